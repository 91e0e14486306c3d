package paddlexedge.demo;

import android.graphics.Bitmap;
import android.graphics.Canvas;
import android.graphics.Color;
import android.graphics.Paint;

import java.util.List;
import java.util.Locale;

import paddlexedge.core.BinaryMask;
import paddlexedge.core.Detection;

/** Draws masks (half transparent), boxes and "label score" over a picture or a transparent layer. */
final class Overlay {
    private static final int[] PALETTE = {0xFFE6194B, 0xFF3CB44B, 0xFF4363D8, 0xFFF58231, 0xFF911EB4, 0xFF46F0F0,
            0xFFF032E6, 0xFFBCF60C, 0xFFFABEBE, 0xFF008080};

    private Overlay() {
    }

    /** {@code base} copied with the detections drawn on it; a transparent layer of the given size when null. */
    static Bitmap draw(Bitmap base, int width, int height, List<Detection> detections) {
        Bitmap out = base != null ? base.copy(Bitmap.Config.ARGB_8888, true)
                : Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888);
        Canvas canvas = new Canvas(out);
        float stroke = Math.max(2f, Math.max(out.getWidth(), out.getHeight()) / 300f);
        Paint box = new Paint();
        box.setStyle(Paint.Style.STROKE);
        box.setStrokeWidth(stroke);
        Paint text = new Paint(Paint.ANTI_ALIAS_FLAG);
        text.setTextSize(stroke * 7);
        Paint label = new Paint();
        for (Detection d : detections) {
            int color = PALETTE[Math.abs(d.clsId) % PALETTE.length];
            drawMask(canvas, d.mask, d.region[0], d.region[1], (color & 0x00FFFFFF) | 0x80000000);
            box.setColor(color);
            canvas.drawRect((float) d.coordinate[0], (float) d.coordinate[1], (float) d.coordinate[2], (float) d.coordinate[3], box);
            String caption = String.format(Locale.ROOT, "%s %.2f", d.label, d.score);
            float top = Math.max(text.getTextSize(), (float) d.coordinate[1]);
            label.setColor(color);
            canvas.drawRect((float) d.coordinate[0], top - text.getTextSize(), (float) d.coordinate[0] + text.measureText(caption) + stroke * 2,
                    top, label);
            text.setColor(Color.WHITE);
            canvas.drawText(caption, (float) d.coordinate[0] + stroke, top - stroke, text);
        }
        return out;
    }

    private static void drawMask(Canvas canvas, BinaryMask mask, int left, int top, int argb) {
        if (mask.width == 0 || mask.height == 0) {
            return;
        }
        int[] pixels = new int[mask.width * mask.height];
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = mask.data[i] != 0 ? argb : 0;
        }
        canvas.drawBitmap(Bitmap.createBitmap(pixels, mask.width, mask.height, Bitmap.Config.ARGB_8888), left, top, null);
    }
}
