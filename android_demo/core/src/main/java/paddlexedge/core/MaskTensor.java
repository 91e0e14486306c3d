package paddlexedge.core;

/**
 * The model's {@code mask} output, {@code [N, H, W]}: float (low-resolution logits or probabilities,
 * or full-size 0/1) or int32 (full-size 0/1, as PaddleDetection exports it).
 */
public class MaskTensor {
    public final int count;
    public final int height;
    public final int width;
    private final float[] floats;
    private final int[] ints;

    private MaskTensor(int count, int height, int width, float[] floats, int[] ints, int length) {
        if (count < 0 || height <= 0 || width <= 0 || (long) count * height * width != length) {
            throw new EdgeException.InputException("mask output of " + length + " values does not have shape [" + count + ", "
                    + height + ", " + width + "]");
        }
        this.count = count;
        this.height = height;
        this.width = width;
        this.floats = floats;
        this.ints = ints;
    }

    /** For subclasses that hold rows another way. */
    protected MaskTensor(int count, int height, int width) {
        this.count = count;
        this.height = height;
        this.width = width;
        this.floats = null;
        this.ints = null;
    }

    public static MaskTensor ofFloats(float[] data, long[] shape) {
        int[] s = shape3(shape);
        return new MaskTensor(s[0], s[1], s[2], data, null, data.length);
    }

    public static MaskTensor ofInts(int[] data, long[] shape) {
        int[] s = shape3(shape);
        return new MaskTensor(s[0], s[1], s[2], null, data, data.length);
    }

    private static int[] shape3(long[] shape) {
        if (shape == null || shape.length != 3) {
            throw new EdgeException.InputException("mask output must have 3 dimensions [N, H, W]");
        }
        return new int[] {(int) shape[0], (int) shape[1], (int) shape[2]};
    }

    /** Value at (instance, y, x) as float. */
    public float get(int instance, int y, int x) {
        int i = (instance * height + y) * width + x;
        return floats != null ? floats[i] : (float) ints[i];
    }

    /** True where (instance, y, x) is non-zero (full-size masks). */
    public boolean isSet(int instance, int y, int x) {
        int i = (instance * height + y) * width + x;
        return floats != null ? floats[i] != 0f : ints[i] != 0;
    }
}
