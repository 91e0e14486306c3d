package paddlexedge.core;

/** An 8-bit RGB image, pixels interleaved row by row (what the model's pre-processing starts from). */
public final class RgbImage {
    public final int width;
    public final int height;
    /** {@code height * width * 3} bytes: R, G, B of each pixel. */
    public final byte[] rgb;

    public RgbImage(int width, int height, byte[] rgb) {
        if (width <= 0 || height <= 0) {
            throw new EdgeException.InputException("image size must be positive, got " + width + "x" + height);
        }
        if (rgb == null || rgb.length != width * height * 3) {
            throw new EdgeException.InputException("an RGB image of " + width + "x" + height + " needs " + (width * height * 3)
                    + " bytes, got " + (rgb == null ? "none" : Integer.toString(rgb.length)));
        }
        this.width = width;
        this.height = height;
        this.rgb = rgb;
    }

    /** From Android's {@code Bitmap.getPixels} (ARGB ints; alpha is ignored). */
    public static RgbImage fromArgb(int[] argb, int width, int height) {
        if (argb == null || argb.length != width * height) {
            throw new EdgeException.InputException("expected " + width + "*" + height + " ARGB pixels");
        }
        byte[] rgb = new byte[argb.length * 3];
        for (int i = 0; i < argb.length; i++) {
            int p = argb[i];
            rgb[3 * i] = (byte) (p >> 16);
            rgb[3 * i + 1] = (byte) (p >> 8);
            rgb[3 * i + 2] = (byte) p;
        }
        return new RgbImage(width, height, rgb);
    }

    /** From OpenCV's BGR order (what the Python runtime reads files as). */
    public static RgbImage fromBgr(byte[] bgr, int width, int height) {
        if (bgr == null || bgr.length != width * height * 3) {
            throw new EdgeException.InputException("expected " + width + "*" + height + "*3 BGR bytes");
        }
        byte[] rgb = new byte[bgr.length];
        for (int i = 0; i < bgr.length; i += 3) {
            rgb[i] = bgr[i + 2];
            rgb[i + 1] = bgr[i + 1];
            rgb[i + 2] = bgr[i];
        }
        return new RgbImage(width, height, rgb);
    }
}
