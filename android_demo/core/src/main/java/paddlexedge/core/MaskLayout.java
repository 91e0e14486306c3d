package paddlexedge.core;

/**
 * Layout of the model's {@code mask} output (edge/spec.py has the full description).
 *
 * <p>{@code full}: {@code [N, H, W]}, 0/1 at the original image size. {@code lowres}: {@code [N, Hm, Wm]}
 * float over the model input at 1/stride resolution; pixel (x, y) of the original image samples it
 * bilinearly at {@code u = (x + 0.5) * scale_w / stride - 0.5} and belongs to the instance when the
 * sample is {@code > threshold}.
 */
public final class MaskLayout {
    public static final String FULL = "full";
    public static final String LOWRES = "lowres";

    public final String kind;
    public final int stride;
    public final float threshold;

    public MaskLayout(String kind, int stride, float threshold) {
        if (!FULL.equals(kind) && !LOWRES.equals(kind)) {
            throw new EdgeException.ModelException("unknown mask layout kind '" + kind + "' (expected 'full' or 'lowres')");
        }
        if (stride < 1) {
            throw new EdgeException.ModelException("mask layout stride must be >= 1, got " + stride);
        }
        this.kind = kind;
        this.stride = stride;
        this.threshold = threshold;
    }

    public boolean isLowres() {
        return LOWRES.equals(kind);
    }

    @Override
    public String toString() {
        return kind + "(stride " + stride + ", threshold " + threshold + ")";
    }
}
