package paddlexedge.core;

/**
 * COCO run-length encoding as pycocotools writes it (what the server's {@code rleResult} holds):
 * runs over the mask in column-major order starting with a run of zeros, each run stored as the
 * difference to the run two before (from the third on), in 5-bit groups offset by 48 ('0').
 */
public final class Rle {
    private Rle() {
    }

    /** The run lengths of a mask in column-major order, the first a run of zeros. */
    public static int[] counts(BinaryMask mask) {
        int n = mask.height * mask.width;
        int[] runs = new int[n + 1];
        int m = 0, run = 0;
        boolean current = false;
        for (int x = 0; x < mask.width; x++) {
            for (int y = 0; y < mask.height; y++) {
                boolean v = mask.data[y * mask.width + x] != 0;
                if (v != current) {
                    runs[m++] = run;
                    run = 0;
                    current = v;
                }
                run++;
            }
        }
        runs[m++] = run;
        int[] out = new int[m];
        System.arraycopy(runs, 0, out, 0, m);
        return out;
    }

    /** pycocotools' {@code rleToString}: the {@code counts} string of a mask. */
    public static String encode(BinaryMask mask) {
        int[] cnts = counts(mask);
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < cnts.length; i++) {
            long x = cnts[i];
            if (i > 2) {
                x -= cnts[i - 2];
            }
            boolean more = true;
            while (more) {
                long c = x & 0x1f;
                x >>= 5;
                more = (c & 0x10) != 0 ? x != -1 : x != 0;
                if (more) {
                    c |= 0x20;
                }
                s.append((char) (c + 48));
            }
        }
        return s.toString();
    }

    /** pycocotools' {@code rleFrString} + {@code decode}: the mask of {@code height x width} a counts string encodes. */
    public static BinaryMask decode(String counts, int height, int width) {
        long total = (long) height * width;
        byte[] out = new byte[height * width];
        long[] cnts = new long[counts.length() + 1];
        int m = 0, p = 0;
        while (p < counts.length()) {
            long x = 0;
            int k = 0;
            boolean more = true;
            while (more) {
                if (p >= counts.length()) {
                    throw new EdgeException.InputException("RLE counts string ends inside a number");
                }
                int c = counts.charAt(p) - 48;
                if (c < 0 || c > 63) {
                    throw new EdgeException.InputException("RLE counts string has an invalid character at " + p);
                }
                x |= (long) (c & 0x1f) << (5 * k);
                more = (c & 0x20) != 0;
                p++;
                k++;
                if (!more && (c & 0x10) != 0) {
                    x |= -1L << (5 * k);
                }
            }
            if (m > 2) {
                x += cnts[m - 2];
            }
            cnts[m++] = x;
        }
        long pos = 0;
        boolean value = false;
        for (int i = 0; i < m; i++) {
            if (cnts[i] < 0 || pos + cnts[i] > total) {
                throw new EdgeException.InputException("RLE runs do not fit a " + height + "x" + width + " mask");
            }
            if (value) {
                for (long j = pos; j < pos + cnts[i]; j++) {
                    int col = (int) (j / height), row = (int) (j % height);
                    out[row * width + col] = 1;
                }
            }
            pos += cnts[i];
            value = !value;
        }
        if (pos != total) {
            throw new EdgeException.InputException("RLE runs cover " + pos + " pixels, a " + height + "x" + width + " mask has " + total);
        }
        return new BinaryMask(height, width, out);
    }
}
