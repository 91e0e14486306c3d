package paddlexedge.core;

/**
 * {@code cv::resize} for 8-bit interleaved images, reproduced bit for bit for the interpolation
 * codes the manifests use: 0 nearest, 1 linear, 2 cubic (PaddleDetection's {@code interp} order).
 *
 * <p>It follows OpenCV 4.10's own C++ kernels as they run on x86 (SSE baseline), which is what the
 * Python runtime calls: it turns Intel IPP off around its resize, because IPP's cubic kernel rounds
 * exact .5 ties differently and is chosen per CPU (see edge/preprocess.py). The facts that matter:
 * <ul>
 * <li>Coordinates: {@code fx = (float)((dx + 0.5) * scale - 0.5)} with {@code scale = 1 / (dw / sw)}
 *     in double; {@code sx = floor(fx)}; the fraction in float.</li>
 * <li>Weights are fixed point: {@code short(rint(w * 2048))}; the horizontal pass sums
 *     {@code pixel * weight} in int with edge pixels replicated.</li>
 * <li>Linear's vertical pass: {@code ((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2) >> 2}.
 *     A downscale by exactly 2 in both axes is OpenCV's area average {@code (a + b + c + d + 2) >> 2}.</li>
 * <li>Cubic's vertical pass runs in blocks of 8 row elements (SSE's int16 lanes) in float,
 *     {@code S0*b0 + (S1*b1 + (S2*b2 + S3*b3))} with {@code b = beta / 2^22}, rounded half to even;
 *     the row's last {@code (width * cn) % 8} elements take the integer path
 *     {@code (sum + 2^21) >> 22}. Both saturate to 0..255.</li>
 * <li>Same size in and out is a copy.</li>
 * </ul>
 * On ARM, OpenCV's NEON build fuses the float multiply-adds, so Python on a board can differ from
 * this in rare last-bit ties; the app uses this class everywhere, so the app itself is deterministic.
 */
public final class OpenCvResize {
    public static final int INTER_NEAREST = 0;
    public static final int INTER_LINEAR = 1;
    public static final int INTER_CUBIC = 2;

    private static final int COEF_BITS = 11;
    private static final int COEF_SCALE = 1 << COEF_BITS;
    private static final int CUBIC_BLOCK = 8; // v_int16 lanes of a 128-bit register

    private OpenCvResize() {
    }

    /** Resizes an interleaved {@code sh x sw x cn} byte image to {@code dh x dw}. */
    public static byte[] resize(byte[] src, int sw, int sh, int cn, int dw, int dh, int interp) {
        if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || cn <= 0) {
            throw new EdgeException.InputException("resize needs positive sizes, got " + sw + "x" + sh + " -> " + dw + "x" + dh);
        }
        if (src.length != sw * sh * cn) {
            throw new EdgeException.InputException("image buffer holds " + src.length + " bytes, expected " + sw + "*" + sh + "*" + cn);
        }
        if (sw == dw && sh == dh) {
            return src.clone();
        }
        switch (interp) {
            case INTER_NEAREST:
                return nearest(src, sw, sh, cn, dw, dh);
            case INTER_LINEAR:
                if (isExactHalf(sw, dw) && isExactHalf(sh, dh)) {
                    return areaHalf(src, sw, cn, dw, dh);
                }
                return linear(src, sw, sh, cn, dw, dh);
            case INTER_CUBIC:
                return cubic(src, sw, sh, cn, dw, dh);
            default:
                throw new EdgeException.ModelException("Resize.interp " + interp + " is not supported by the Java core "
                        + "(supported: 0 nearest, 1 linear, 2 cubic); re-export the model with one of those");
        }
    }

    private static double scaleOf(int src, int dst) {
        return 1.0 / ((double) dst / src);
    }

    private static boolean isExactHalf(int src, int dst) {
        double scale = scaleOf(src, dst);
        return Math.abs(scale - 2.0) < Math.ulp(1.0); // OpenCV: |scale - iscale| < DBL_EPSILON, iscale == 2
    }

    private static int floorF(float v) {
        return (int) Math.floor(v);
    }

    private static short saturateShort(float v) {
        double r = Math.rint(v);
        return (short) Math.max(Short.MIN_VALUE, Math.min(Short.MAX_VALUE, r));
    }

    private static int clamp(int v, int lo, int hi) {
        return v < lo ? lo : (v > hi ? hi : v);
    }

    private static int saturateByte(int v) {
        return v < 0 ? 0 : (v > 255 ? 255 : v);
    }

    // ----------------------------------------------------------------------------------- nearest
    private static byte[] nearest(byte[] src, int sw, int sh, int cn, int dw, int dh) {
        double ifx = 1.0 / ((double) dw / sw), ify = 1.0 / ((double) dh / sh);
        byte[] dst = new byte[dw * dh * cn];
        int[] xofs = new int[dw];
        for (int x = 0; x < dw; x++) {
            xofs[x] = Math.min((int) Math.floor(x * ifx), sw - 1);
        }
        for (int y = 0; y < dh; y++) {
            int sy = Math.min((int) Math.floor(y * ify), sh - 1);
            for (int x = 0; x < dw; x++) {
                System.arraycopy(src, (sy * sw + xofs[x]) * cn, dst, (y * dw + x) * cn, cn);
            }
        }
        return dst;
    }

    // ------------------------------------------------------------------------------- area (x2)
    private static byte[] areaHalf(byte[] src, int sw, int cn, int dw, int dh) {
        byte[] dst = new byte[dw * dh * cn];
        int srow = sw * cn;
        for (int y = 0; y < dh; y++) {
            int r0 = 2 * y * srow, r1 = r0 + srow;
            for (int x = 0; x < dw; x++) {
                for (int c = 0; c < cn; c++) {
                    int i = 2 * x * cn + c;
                    int sum = (src[r0 + i] & 0xff) + (src[r0 + i + cn] & 0xff) + (src[r1 + i] & 0xff) + (src[r1 + i + cn] & 0xff);
                    dst[(y * dw + x) * cn + c] = (byte) ((sum + 2) >> 2);
                }
            }
        }
        return dst;
    }

    // ------------------------------------------------------------------------------------ linear
    private static byte[] linear(byte[] src, int sw, int sh, int cn, int dw, int dh) {
        double scaleX = scaleOf(sw, dw), scaleY = scaleOf(sh, dh);
        int[] xofs = new int[dw];
        short[] alpha = new short[dw * 2];
        for (int dx = 0; dx < dw; dx++) {
            float fx = (float) ((dx + 0.5) * scaleX - 0.5);
            int sx = floorF(fx);
            fx -= sx;
            if (sx < 0) {
                fx = 0;
                sx = 0;
            }
            if (sx >= sw - 1) {
                fx = 0;
                sx = sw - 1;
            }
            xofs[dx] = sx;
            alpha[dx * 2] = saturateShort((1.f - fx) * COEF_SCALE);
            alpha[dx * 2 + 1] = saturateShort(fx * COEF_SCALE);
        }
        int width = dw * cn;
        int[][] rows = new int[2][width];
        byte[] dst = new byte[dh * width];
        for (int dy = 0; dy < dh; dy++) {
            float fy = (float) ((dy + 0.5) * scaleY - 0.5);
            int sy = floorF(fy);
            fy -= sy;
            short b0 = saturateShort((1.f - fy) * COEF_SCALE), b1 = saturateShort(fy * COEF_SCALE);
            for (int k = 0; k < 2; k++) {
                int row = clamp(sy + k, 0, sh - 1) * sw * cn;
                int[] out = rows[k];
                for (int dx = 0; dx < dw; dx++) {
                    int sx = xofs[dx];
                    for (int c = 0; c < cn; c++) {
                        int p0 = src[row + sx * cn + c] & 0xff;
                        if (sx + 1 < sw) {
                            int p1 = src[row + (sx + 1) * cn + c] & 0xff;
                            out[dx * cn + c] = p0 * alpha[dx * 2] + p1 * alpha[dx * 2 + 1];
                        } else {
                            out[dx * cn + c] = p0 * COEF_SCALE; // right edge: the last pixel, weight 1
                        }
                    }
                }
            }
            int base = dy * width;
            for (int x = 0; x < width; x++) {
                int v = (((b0 * (rows[0][x] >> 4)) >> 16) + ((b1 * (rows[1][x] >> 4)) >> 16) + 2) >> 2;
                dst[base + x] = (byte) saturateByte(v);
            }
        }
        return dst;
    }

    // ------------------------------------------------------------------------------------- cubic
    private static void cubicCoeffs(float x, float[] c) {
        final float a = -0.75f;
        c[0] = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a;
        c[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
        c[2] = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1;
        c[3] = 1.f - c[0] - c[1] - c[2];
    }

    private static byte[] cubic(byte[] src, int sw, int sh, int cn, int dw, int dh) {
        double scaleX = scaleOf(sw, dw), scaleY = scaleOf(sh, dh);
        float[] cbuf = new float[4];
        int[] xofs = new int[dw];
        short[] alpha = new short[dw * 4];
        for (int dx = 0; dx < dw; dx++) {
            float fx = (float) ((dx + 0.5) * scaleX - 0.5);
            int sx = floorF(fx);
            fx -= sx;
            xofs[dx] = sx;
            cubicCoeffs(fx, cbuf);
            for (int k = 0; k < 4; k++) {
                alpha[dx * 4 + k] = saturateShort(cbuf[k] * COEF_SCALE);
            }
        }
        int width = dw * cn;
        // horizontal pass of every source row, computed once (each is used by up to 4 output rows)
        int[][] hrows = new int[sh][];
        byte[] dst = new byte[dh * width];
        int vecEnd = width >= CUBIC_BLOCK ? (width / CUBIC_BLOCK) * CUBIC_BLOCK : 0;
        final float scale = 1.f / (COEF_SCALE * COEF_SCALE);
        int[][] s = new int[4][];
        for (int dy = 0; dy < dh; dy++) {
            float fy = (float) ((dy + 0.5) * scaleY - 0.5);
            int sy = floorF(fy);
            fy -= sy;
            cubicCoeffs(fy, cbuf);
            short[] beta = new short[4];
            for (int k = 0; k < 4; k++) {
                beta[k] = saturateShort(cbuf[k] * COEF_SCALE);
                int row = clamp(sy - 1 + k, 0, sh - 1);
                if (hrows[row] == null) {
                    hrows[row] = cubicRow(src, row, sw, cn, dw, xofs, alpha);
                }
                s[k] = hrows[row];
            }
            float f0 = beta[0] * scale, f1 = beta[1] * scale, f2 = beta[2] * scale, f3 = beta[3] * scale;
            int base = dy * width;
            for (int x = 0; x < vecEnd; x++) {
                float t = s[3][x] * f3;
                t = s[2][x] * f2 + t;
                t = s[1][x] * f1 + t;
                t = s[0][x] * f0 + t;
                int r = (int) Math.rint(t);
                r = Math.max(Short.MIN_VALUE, Math.min(Short.MAX_VALUE, r));
                dst[base + x] = (byte) saturateByte(r);
            }
            for (int x = vecEnd; x < width; x++) {
                int acc = s[0][x] * beta[0] + s[1][x] * beta[1] + s[2][x] * beta[2] + s[3][x] * beta[3];
                dst[base + x] = (byte) saturateByte((acc + (1 << 21)) >> 22);
            }
            if (dy + 1 < dh) {
                releaseRowsAbove(hrows, (int) Math.floor((float) ((dy + 1.5) * scaleY - 0.5)) - 1);
            }
        }
        return dst;
    }

    /** Drops horizontal rows no later output row needs (keeps memory at a few rows). */
    private static void releaseRowsAbove(int[][] hrows, int firstNeeded) {
        for (int r = 0; r < Math.min(firstNeeded, hrows.length); r++) {
            hrows[r] = null;
        }
    }

    private static int[] cubicRow(byte[] src, int row, int sw, int cn, int dw, int[] xofs, short[] alpha) {
        int[] out = new int[dw * cn];
        int base = row * sw * cn;
        for (int dx = 0; dx < dw; dx++) {
            int sx = xofs[dx];
            for (int c = 0; c < cn; c++) {
                int v = 0;
                for (int j = 0; j < 4; j++) {
                    int px = clamp(sx - 1 + j, 0, sw - 1);
                    v += (src[base + px * cn + c] & 0xff) * alpha[dx * 4 + j];
                }
                out[dx * cn + c] = v;
            }
        }
        return out;
    }
}
