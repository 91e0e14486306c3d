package paddlexedge.core;

import java.util.ArrayList;
import java.util.List;

/**
 * PaddleX's instance-segmentation post-processing for both mask layouts, as edge/postprocess.py:
 * keep rows with {@code score > threshold} (strict, compared in float32) and {@code cls > -1}; clip
 * boxes to the image; crop each mask to its box rounded half to even; a box with no area is dropped
 * together with its mask. {@code lowres} masks are resized (bilinear, edge-clamped) only inside the
 * kept boxes; {@code full} masks are cropped, zero-filled where the mask is smaller than the image.
 */
public final class Postprocessor {
    private final Manifest manifest;

    public Postprocessor(Manifest manifest) {
        this.manifest = manifest;
    }

    /**
     * @param bbox        rows {@code [cls, score, x1, y1, x2, y2]} in original-image pixels
     * @param bboxNum     the model's {@code bbox_num} (its first value counts the valid rows; empty: all rows)
     * @param mask        the model's {@code mask} output
     * @param imageHeight original image height
     * @param imageWidth  original image width
     * @param scaleFactor the {@code scale_factor} feed, [h_scale, w_scale]
     * @param threshold   score threshold, e.g. the manifest's draw_threshold
     */
    public List<Detection> run(float[] bbox, int[] bboxNum, MaskTensor mask, int imageHeight, int imageWidth,
                               float[] scaleFactor, double threshold) {
        if (bbox.length % 6 != 0) {
            throw new EdgeException.InputException("bbox output has " + bbox.length + " values, not rows of 6");
        }
        int rows = bbox.length / 6;
        int count = bboxNum != null && bboxNum.length > 0 ? Math.min(Math.max(bboxNum[0], 0), rows) : rows;
        float thr = (float) threshold; // numpy compares the float32 scores with the threshold as float32
        boolean lowres = manifest.maskLayout.isLowres();
        List<Detection> out = new ArrayList<Detection>();
        for (int i = 0; i < count; i++) {
            float cls = bbox[6 * i], score = bbox[6 * i + 1];
            if (!(score > thr && cls > -1f)) {
                continue;
            }
            double x1 = Math.max(0.0, bbox[6 * i + 2]), y1 = Math.max(0.0, bbox[6 * i + 3]);
            double x2 = Math.min((double) imageWidth, bbox[6 * i + 4]), y2 = Math.min((double) imageHeight, bbox[6 * i + 5]);
            int[] region = {(int) Math.rint(x1), (int) Math.rint(y1), (int) Math.rint(x2), (int) Math.rint(y2)};
            if (region[2] <= region[0] || region[3] <= region[1]) {
                continue; // no area: box and mask go together
            }
            if (i >= mask.count) {
                throw new EdgeException.InputException("mask output has " + mask.count + " instances but bbox row " + i + " is kept");
            }
            BinaryMask crop = lowres ? lowresMaskInBox(mask, i, region, scaleFactor, manifest.maskLayout)
                    : cropFullMask(mask, i, region);
            int clsId = (int) cls;
            out.add(new Detection(clsId, manifest.label(clsId), score, new double[] {x1, y1, x2, y2}, region, crop));
        }
        return out;
    }

    static BinaryMask cropFullMask(MaskTensor mask, int instance, int[] region) {
        int x1 = region[0], y1 = region[1], x2 = region[2], y2 = region[3];
        int h = y2 - y1, w = x2 - x1;
        byte[] out = new byte[h * w];
        for (int y = y1; y < Math.min(y2, mask.height); y++) {
            for (int x = x1; x < Math.min(x2, mask.width); x++) {
                out[(y - y1) * w + (x - x1)] = (byte) (mask.isSet(instance, y, x) ? 1 : 0);
            }
        }
        return new BinaryMask(h, w, out);
    }

    /** Source indices and float32 weights along one axis: u = (x + 0.5) * scale / stride - 0.5, clamped. */
    private static void axisWeights(int start, int stop, double scale, int stride, int size, int[] lo, int[] hi, float[] frac) {
        double step = scale / stride;
        for (int i = 0; i < stop - start; i++) {
            double u = (start + i + 0.5) * step - 0.5;
            u = Math.min(Math.max(u, 0.0), size - 1);
            int l = (int) Math.floor(u);
            lo[i] = l;
            hi[i] = Math.min(l + 1, size - 1);
            frac[i] = (float) (u - l);
        }
    }

    static BinaryMask lowresMaskInBox(MaskTensor mask, int instance, int[] region, float[] scaleFactor, MaskLayout layout) {
        int x1 = region[0], y1 = region[1], x2 = region[2], y2 = region[3];
        int h = y2 - y1, w = x2 - x1;
        int[] v0 = new int[h], v1 = new int[h], u0 = new int[w], u1 = new int[w];
        float[] fv = new float[h], fu = new float[w];
        axisWeights(y1, y2, scaleFactor[0], layout.stride, mask.height, v0, v1, fv);
        axisWeights(x1, x2, scaleFactor[1], layout.stride, mask.width, u0, u1, fu);
        byte[] out = new byte[h * w];
        for (int y = 0; y < h; y++) {
            float wv = fv[y], wv1 = 1 - wv;
            for (int x = 0; x < w; x++) {
                float wu = fu[x], wu1 = 1 - wu;
                // float32 with numpy's order: (a*(1-f) + b*f) per row, then the same across rows
                float top = mask.get(instance, v0[y], u0[x]) * wu1 + mask.get(instance, v0[y], u1[x]) * wu;
                float bottom = mask.get(instance, v1[y], u0[x]) * wu1 + mask.get(instance, v1[y], u1[x]) * wu;
                float value = top * wv1 + bottom * wv;
                out[y * w + x] = (byte) (value > layout.threshold ? 1 : 0);
            }
        }
        return new BinaryMask(h, w, out);
    }
}
