package paddlexedge.core;

/** A 0/1 mask of {@code height x width}, row-major (one byte per pixel). */
public final class BinaryMask {
    public final int height;
    public final int width;
    public final byte[] data;

    public BinaryMask(int height, int width, byte[] data) {
        if (height < 0 || width < 0 || data.length != height * width) {
            throw new EdgeException.InputException("mask of " + height + "x" + width + " needs " + (height * width) + " bytes");
        }
        this.height = height;
        this.width = width;
        this.data = data;
    }

    public boolean get(int y, int x) {
        return data[y * width + x] != 0;
    }

    public int area() {
        int n = 0;
        for (byte b : data) {
            n += b != 0 ? 1 : 0;
        }
        return n;
    }
}
