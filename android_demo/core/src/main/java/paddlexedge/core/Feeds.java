package paddlexedge.core;

/** The model's three inputs for one image, in the manifest's input order: im_shape, image, scale_factor. */
public final class Feeds {
    /** [h, w] after Resize, shape [1, 2]. */
    public final float[] imShape;
    /** CHW float32 of shape [1, channels, height, width]. */
    public final float[] image;
    public final int channels;
    public final int height;
    public final int width;
    /** [h_scale, w_scale] = resized / original, shape [1, 2]. */
    public final float[] scaleFactor;

    public Feeds(float[] imShape, float[] image, int channels, int height, int width, float[] scaleFactor) {
        this.imShape = imShape;
        this.image = image;
        this.channels = channels;
        this.height = height;
        this.width = width;
        this.scaleFactor = scaleFactor;
    }

    public long[] imageShape() {
        return new long[] {1, channels, height, width};
    }
}
