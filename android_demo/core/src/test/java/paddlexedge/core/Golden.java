package paddlexedge.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/** Reads tests/golden (written by `python -m tools.golden`): index.json, manifests and .npz arrays. */
final class Golden {
    /** One .npy array: its dtype ('<f4', '<i4', '|u1'), shape and raw little-endian bytes. */
    static final class Array {
        final String dtype;
        final long[] shape;
        final ByteBuffer data;

        Array(String dtype, long[] shape, ByteBuffer data) {
            this.dtype = dtype;
            this.shape = shape;
            this.data = data.order(ByteOrder.LITTLE_ENDIAN);
        }

        float[] floats() {
            require("<f4");
            float[] out = new float[data.remaining() / 4];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
            return out;
        }

        int[] ints() {
            require("<i4");
            int[] out = new int[data.remaining() / 4];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
            return out;
        }

        byte[] bytes() {
            require("|u1");
            byte[] out = new byte[data.remaining()];
            data.duplicate().get(out);
            return out;
        }

        private void require(String want) {
            if (!dtype.equals(want)) {
                throw new IllegalStateException("array has dtype " + dtype + ", not " + want);
            }
        }
    }

    static final File DIR = locate();

    private Golden() {
    }

    private static File locate() {
        String configured = System.getProperty("golden.dir");
        if (configured != null) {
            return new File(configured);
        }
        for (File dir = new File("").getAbsoluteFile(); dir != null; dir = dir.getParentFile()) {
            File candidate = new File(dir, "tests/golden");
            if (new File(candidate, "index.json").isFile()) {
                return candidate;
            }
        }
        throw new IllegalStateException("tests/golden not found; pass -Dgolden.dir=/path/to/tests/golden");
    }

    static String text(String relative) throws IOException {
        return new String(Files.readAllBytes(new File(DIR, relative).toPath()), StandardCharsets.UTF_8);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> index() throws IOException {
        return (Map<String, Object>) Json.parse(text("index.json"));
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> cases() throws IOException {
        return (List<Map<String, Object>>) (List<?>) index().get("cases");
    }

    static Map<String, Array> npz(String relative) throws IOException {
        Map<String, Array> arrays = new HashMap<String, Array>();
        ZipFile zip = new ZipFile(new File(DIR, relative));
        try {
            for (ZipEntry entry : java.util.Collections.list(zip.entries())) {
                String name = entry.getName().replaceAll("\\.npy$", "");
                InputStream in = zip.getInputStream(entry);
                try {
                    arrays.put(name, npy(readAll(in)));
                } finally {
                    in.close();
                }
            }
        } finally {
            zip.close();
        }
        return arrays;
    }

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[1 << 16];
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
        }
        return out.toByteArray();
    }

    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']+)'");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

    static Array npy(byte[] file) {
        if (file.length < 10 || (file[0] & 0xff) != 0x93 || file[1] != 'N') {
            throw new IllegalArgumentException("not a .npy file");
        }
        int major = file[6];
        ByteBuffer buf = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen = major == 1 ? buf.getShort(8) & 0xffff : buf.getInt(8);
        int start = major == 1 ? 10 : 12;
        String header = new String(file, start, headerLen, StandardCharsets.ISO_8859_1);
        if (header.contains("'fortran_order': True")) {
            throw new IllegalArgumentException("Fortran-ordered arrays are not expected");
        }
        Matcher d = DESCR.matcher(header), s = SHAPE.matcher(header);
        if (!d.find() || !s.find()) {
            throw new IllegalArgumentException("bad .npy header: " + header);
        }
        String[] dims = s.group(1).split(",");
        int n = 0;
        long[] shape = new long[dims.length];
        for (String dim : dims) {
            if (!dim.trim().isEmpty()) {
                shape[n++] = Long.parseLong(dim.trim());
            }
        }
        long[] trimmed = new long[n];
        System.arraycopy(shape, 0, trimmed, 0, n);
        int offset = start + headerLen;
        return new Array(d.group(1), trimmed, ByteBuffer.wrap(file, offset, file.length - offset).slice());
    }
}
