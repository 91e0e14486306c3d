package paddlexedge.core;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Turns an RGB image into the model's feeds by running the manifest's {@code preprocess} ops in
 * order, exactly as edge/preprocess.py does (same arithmetic in float32, same rounding):
 * Resize (keep_ratio, interp 0/1/2), NormalizeImage, Permute, Pad, PadStride.
 */
public final class Preprocessor {
    private interface Op {
        void apply(State s);
    }

    /** The image between ops: HWC until Permute, CHW after; 8-bit values until NormalizeImage or Pad. */
    private static final class State {
        float[] data;
        byte[] bytes; // the 8-bit image while no op has made it float
        int c;
        int h;
        int w;
        boolean chw;
        float imShapeH;
        float imShapeW;
        double scaleH = 1.0;
        double scaleW = 1.0;

        float[] floats() {
            if (data == null) {
                data = new float[bytes.length];
                for (int i = 0; i < bytes.length; i++) {
                    data[i] = bytes[i] & 0xff;
                }
                bytes = null;
            }
            return data;
        }
    }

    private final List<Op> ops = new ArrayList<Op>();

    public Preprocessor(Manifest manifest) {
        for (Map<String, Object> op : manifest.preprocess) {
            Object type = op.get("type");
            if ("Resize".equals(type)) {
                ops.add(resize(op, manifest.modelName));
            } else if ("NormalizeImage".equals(type)) {
                ops.add(normalize(op));
            } else if ("Permute".equals(type)) {
                ops.add(new Op() {
                    public void apply(State s) {
                        permute(s);
                    }
                });
            } else if ("Pad".equals(type)) {
                ops.add(pad(op));
            } else if ("PadStride".equals(type)) {
                ops.add(padStride(op));
            } else {
                throw new EdgeException.ModelException("pre-processing op '" + type + "' of model '" + manifest.modelName
                        + "' is not supported (supported: Resize, NormalizeImage, Permute, Pad, PadStride)");
            }
        }
    }

    public Feeds run(RgbImage image) {
        State s = new State();
        s.bytes = image.rgb;
        s.c = 3;
        s.h = image.height;
        s.w = image.width;
        s.imShapeH = image.height;
        s.imShapeW = image.width;
        for (Op op : ops) {
            op.apply(s);
        }
        if (!s.chw) {
            permute(s);
        }
        return new Feeds(new float[] {s.imShapeH, s.imShapeW}, s.floats(), s.c, s.h, s.w,
                new float[] {(float) s.scaleH, (float) s.scaleW});
    }

    private static int[] hw(Object size, String what) {
        if (size instanceof Number) {
            int v = ((Number) size).intValue();
            return new int[] {v, v};
        }
        if (size instanceof List && ((List<?>) size).size() == 2) {
            List<?> list = (List<?>) size;
            return new int[] {((Number) list.get(0)).intValue(), ((Number) list.get(1)).intValue()};
        }
        throw new EdgeException.ModelException(what + " must be a number or [h, w], got " + size);
    }

    private static float[] floats(Object value, float[] fallback, String what) {
        if (value == null) {
            return fallback;
        }
        if (!(value instanceof List)) {
            throw new EdgeException.ModelException(what + " must be a list of numbers, got " + value);
        }
        List<?> list = (List<?>) value;
        float[] out = new float[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) list.get(i)).floatValue();
        }
        return out;
    }

    private static double[] doubles(Object value, double[] fallback, String what) {
        if (value == null) {
            return fallback;
        }
        if (!(value instanceof List)) {
            throw new EdgeException.ModelException(what + " must be a list of numbers, got " + value);
        }
        List<?> list = (List<?>) value;
        double[] out = new double[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) list.get(i)).doubleValue();
        }
        return out;
    }

    private static Op resize(Map<String, Object> op, String model) {
        final int[] target = hw(op.get("target_size"), "Resize.target_size");
        final boolean keepRatio = Boolean.TRUE.equals(op.get("keep_ratio"));
        Object code = op.containsKey("interp") ? op.get("interp") : Long.valueOf(1);
        if (!(code instanceof Long) || (Long) code < 0 || (Long) code > 2) {
            throw new EdgeException.ModelException("Resize.interp " + code + " of model '" + model + "' is not supported by the "
                    + "Java core (supported: 0 nearest, 1 linear, 2 cubic)");
        }
        final int interp = ((Long) code).intValue();
        return new Op() {
            public void apply(State s) {
                if (s.bytes == null || s.chw) {
                    throw new EdgeException.ModelException("Resize must come before NormalizeImage, Pad and Permute "
                            + "(the Java core resizes 8-bit HWC images only)");
                }
                int newH, newW;
                if (keepRatio) { // PaddleX: scale = min(max(t)/max(img), min(t)/min(img)), sizes rounded half to even
                    double scale = Math.min((double) Math.max(target[0], target[1]) / Math.max(s.h, s.w),
                            (double) Math.min(target[0], target[1]) / Math.min(s.h, s.w));
                    newH = (int) Math.rint(s.h * scale);
                    newW = (int) Math.rint(s.w * scale);
                } else {
                    newH = target[0];
                    newW = target[1];
                }
                s.bytes = OpenCvResize.resize(s.bytes, s.w, s.h, s.c, newW, newH, interp);
                s.scaleH = (double) newH / s.h;
                s.scaleW = (double) newW / s.w;
                s.h = newH;
                s.w = newW;
                s.imShapeH = newH;
                s.imShapeW = newW;
            }
        };
    }

    private static Op normalize(Map<String, Object> op) {
        boolean isScale = !Boolean.FALSE.equals(op.get("is_scale"));
        // as the runtime (and PaddleX): (scale / std) and (-mean / std) in double, then rounded to float
        double scale = isScale ? 1.0 / 255.0 : 1.0;
        double[] mean = doubles(op.get("mean"), new double[] {0, 0, 0}, "NormalizeImage.mean");
        double[] std = doubles(op.get("std"), new double[] {1, 1, 1}, "NormalizeImage.std");
        if (mean.length != 3 || std.length != 3) {
            throw new EdgeException.ModelException("NormalizeImage.mean and .std need 3 values each");
        }
        final float[] alpha = new float[3];
        final float[] beta = new float[3];
        for (int c = 0; c < 3; c++) {
            if (std[c] == 0.0) {
                throw new EdgeException.ModelException("NormalizeImage.std must not contain 0");
            }
            alpha[c] = (float) (scale / std[c]);
            beta[c] = (float) (-mean[c] / std[c]);
        }
        return new Op() {
            public void apply(State s) {
                if (s.chw) {
                    throw new EdgeException.ModelException("NormalizeImage after Permute is not supported (the runtime "
                            + "normalises HWC images); re-export the model");
                }
                float[] d = s.floats();
                for (int i = 0; i < d.length; i++) {
                    int c = i % 3;
                    float v = d[i] * alpha[c];
                    d[i] = v + beta[c];
                }
            }
        };
    }

    private static void permute(State s) {
        if (s.chw) {
            return;
        }
        float[] hwc = s.floats();
        float[] chw = new float[hwc.length];
        int plane = s.h * s.w;
        for (int i = 0; i < plane; i++) {
            for (int c = 0; c < s.c; c++) {
                chw[c * plane + i] = hwc[i * s.c + c];
            }
        }
        s.data = chw;
        s.chw = true;
    }

    private static void padTo(State s, int padH, int padW, float[] fill) {
        float[] src = s.floats();
        int h = s.h, w = s.w, c = s.c;
        int nh = Math.max(padH, h), nw = Math.max(padW, w);
        float[] out = new float[c * nh * nw];
        if (s.chw) {
            for (int k = 0; k < c; k++) {
                java.util.Arrays.fill(out, k * nh * nw, (k + 1) * nh * nw, fill[k]);
                for (int y = 0; y < h; y++) {
                    System.arraycopy(src, (k * h + y) * w, out, (k * nh + y) * nw, w);
                }
            }
        } else {
            for (int i = 0; i < nh * nw; i++) {
                for (int k = 0; k < c; k++) {
                    out[i * c + k] = fill[k];
                }
            }
            for (int y = 0; y < h; y++) {
                System.arraycopy(src, y * w * c, out, y * nw * c, w * c);
            }
        }
        s.data = out;
        s.h = nh;
        s.w = nw;
    }

    private static Op pad(Map<String, Object> op) {
        final int[] size = hw(op.get("size"), "Pad.size");
        final float[] fill = floats(op.get("fill_value"), new float[] {127.5f, 127.5f, 127.5f}, "Pad.fill_value");
        if (fill.length != 3) {
            throw new EdgeException.ModelException("Pad.fill_value needs 3 values");
        }
        return new Op() {
            public void apply(State s) {
                padTo(s, size[0], size[1], fill);
            }
        };
    }

    private static Op padStride(Map<String, Object> op) {
        final int stride = op.get("stride") instanceof Number ? ((Number) op.get("stride")).intValue() : 0;
        return new Op() {
            public void apply(State s) {
                if (stride <= 0) {
                    return;
                }
                int ph = (s.h + stride - 1) / stride * stride, pw = (s.w + stride - 1) / stride * stride;
                padTo(s, ph, pw, new float[] {0f, 0f, 0f});
            }
        };
    }
}
