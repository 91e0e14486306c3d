package paddlexedge.core;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A bundle's manifest.json (schema 1, written by {@code edge export}): everything the app needs to
 * know about the model. Nothing about a model is hard-coded anywhere else.
 */
public final class Manifest {
    public static final int SCHEMA_VERSION = 1;
    public static final String MANIFEST_FILE = "manifest.json";
    public static final String DEFAULT_MODEL_FILE = "model.nb";

    public final String modelName;
    public final String arch;
    /** Feed names in the order the model takes its inputs: im_shape, image, scale_factor. */
    public final List<String> inputNames;
    /** Static input shapes as exported, in the same order (the image's is [1, 3, H, W]). */
    public final List<long[]> inputShapes;
    /** Output names: bbox, bbox_num, mask. */
    public final List<String> outputNames;
    public final MaskLayout maskLayout;
    public final List<Map<String, Object>> preprocess;
    public final List<String> labels;
    public final double drawThreshold;
    public final String modelFile;
    public final String sha256;
    public final String target;
    public final String precision;

    private Manifest(Map<String, Object> m, String where) {
        Object version = m.get("schema_version");
        if (!(version instanceof Long) || ((Long) version).intValue() != SCHEMA_VERSION) {
            throw new EdgeException.ManifestException(where + ": schema_version " + version + " is not supported by this app (expects "
                    + SCHEMA_VERSION + "); re-export the bundle with this version of `edge export`");
        }
        modelName = str(m, "model_name", where);
        arch = m.get("arch") instanceof String ? (String) m.get("arch") : "";
        List<String> names = new ArrayList<String>();
        List<long[]> shapes = new ArrayList<long[]>();
        for (Object input : list(m, "inputs", where)) {
            Map<String, Object> in = asMap(input, "inputs[]", where);
            names.add(str(in, "name", where));
            List<Object> dims = list(in, "shape", where);
            long[] shape = new long[dims.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = number(dims.get(i), "inputs[].shape", where).longValue();
            }
            shapes.add(shape);
        }
        if (names.size() != 3) {
            throw new EdgeException.ManifestException(where + ": expected 3 inputs (im_shape, image, scale_factor), found " + names.size());
        }
        inputNames = Collections.unmodifiableList(names);
        inputShapes = Collections.unmodifiableList(shapes);
        Map<String, Object> outputs = asMap(m.get("outputs"), "outputs", where);
        Map<String, Object> mask = asMap(outputs.get("mask"), "outputs.mask", where);
        List<String> outs = new ArrayList<String>();
        outs.add(str(asMap(outputs.get("bbox"), "outputs.bbox", where), "name", where));
        outs.add(str(asMap(outputs.get("bbox_num"), "outputs.bbox_num", where), "name", where));
        outs.add(str(mask, "name", where));
        outputNames = Collections.unmodifiableList(outs);
        String kind = mask.get("kind") instanceof String ? (String) mask.get("kind") : MaskLayout.FULL;
        int stride = mask.containsKey("stride") ? number(mask.get("stride"), "outputs.mask.stride", where).intValue() : 1;
        double maskThreshold = mask.containsKey("threshold") ? number(mask.get("threshold"), "outputs.mask.threshold", where).doubleValue() : 0.5;
        try {
            maskLayout = new MaskLayout(kind, stride, (float) maskThreshold);
        } catch (EdgeException.ModelException e) {
            throw new EdgeException.ManifestException(where + ": " + e.getMessage());
        }
        List<Map<String, Object>> ops = new ArrayList<Map<String, Object>>();
        for (Object op : list(m, "preprocess", where)) {
            ops.add(Collections.unmodifiableMap(asMap(op, "preprocess[]", where)));
        }
        preprocess = Collections.unmodifiableList(ops);
        List<String> labelList = new ArrayList<String>();
        for (Object label : list(m, "labels", where)) {
            labelList.add(String.valueOf(label));
        }
        labels = Collections.unmodifiableList(labelList);
        drawThreshold = m.containsKey("draw_threshold") ? number(m.get("draw_threshold"), "draw_threshold", where).doubleValue() : 0.5;
        Object file = m.get("model_file");
        modelFile = file == null ? DEFAULT_MODEL_FILE : String.valueOf(file);
        if (modelFile.isEmpty() || modelFile.contains("/") || modelFile.contains("\\") || modelFile.equals("..")) {
            throw new EdgeException.ManifestException(where + ": model_file '" + modelFile + "' must be a file name inside the bundle");
        }
        Object hash = m.get("sha256");
        if (!(hash instanceof String)) {
            throw new EdgeException.ManifestException(where + " records no sha256 for " + modelFile + "; re-run `edge export`");
        }
        sha256 = ((String) hash).toLowerCase(Locale.ROOT);
        target = m.get("target") instanceof String ? (String) m.get("target") : "";
        precision = m.get("precision") instanceof String ? (String) m.get("precision") : "";
    }

    /** Reads manifest.json text; {@code where} names it in error messages (e.g. "assets/models/x/manifest.json"). */
    public static Manifest parse(String json, String where) {
        Object root;
        try {
            root = Json.parse(json);
        } catch (EdgeException.ManifestException e) {
            throw new EdgeException.ManifestException(where + " is not valid JSON (" + e.getMessage()
                    + "); the bundle may be half-copied, run `edge bundle --android` again");
        }
        return new Manifest(asMap(root, "the top level", where), where);
    }

    /** PaddleX's label of a class id: the manifest's label, or the id itself when out of range. */
    public String label(int clsId) {
        return clsId >= 0 && clsId < labels.size() ? labels.get(clsId) : Integer.toString(clsId);
    }

    /** Checks that the model file's bytes have the sha256 the manifest records (the runtime refuses otherwise). */
    public void verifyModel(InputStream modelBytes) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
        byte[] buffer = new byte[1 << 16];
        int n;
        while ((n = modelBytes.read(buffer)) > 0) {
            digest.update(buffer, 0, n);
        }
        String actual = hex(digest.digest());
        if (!actual.equals(sha256)) {
            throw new EdgeException.ManifestException(modelFile + ": sha256 " + actual + " does not match " + sha256
                    + " recorded in the manifest; the model file was changed or damaged after export. Copy the bundle again.");
        }
    }

    static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            out.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
        }
        return out.toString();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> asMap(Object value, String field, String where) {
        if (!(value instanceof Map)) {
            throw new EdgeException.ManifestException(where + ": " + field + " must be a JSON object; re-export the bundle");
        }
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Map<String, Object> m, String key, String where) {
        Object value = m.get(key);
        if (!(value instanceof List)) {
            throw new EdgeException.ManifestException(where + ": missing or malformed field '" + key + "' (a list); re-export the bundle");
        }
        return (List<Object>) value;
    }

    static String str(Map<String, Object> m, String key, String where) {
        Object value = m.get(key);
        if (!(value instanceof String)) {
            throw new EdgeException.ManifestException(where + ": missing or malformed field '" + key + "' (a string); re-export the bundle");
        }
        return (String) value;
    }

    static Number number(Object value, String field, String where) {
        if (!(value instanceof Number)) {
            throw new EdgeException.ManifestException(where + ": " + field + " must be a number, got " + value);
        }
        return (Number) value;
    }
}
