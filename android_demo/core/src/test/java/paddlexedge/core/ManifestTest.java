package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.Test;

public class ManifestTest {
    private static String lowres() throws IOException {
        return Golden.text("manifests/demo-lowres.json");
    }

    @Test
    public void readsWhatTheExporterWrites() throws IOException {
        Manifest m = Manifest.parse(lowres(), "demo-lowres.json");
        assertEquals("PP-YOLOE_seg-demo", m.modelName);
        assertEquals(Arrays.asList("im_shape", "image", "scale_factor"), m.inputNames);
        assertArrayEquals(new long[] {1, 3, 192, 192}, m.inputShapes.get(1));
        assertTrue(m.maskLayout.isLowres());
        assertEquals(4, m.maskLayout.stride);
        assertEquals(0.5f, m.maskLayout.threshold, 0f);
        assertEquals(Arrays.asList("circle", "rectangle", "triangle", "star", "ring"), m.labels);
        assertEquals("star", m.label(3));
        assertEquals("7", m.label(7));
        assertEquals("-1", m.label(-1));
        assertEquals("model.nb", m.modelFile);
        assertEquals(64, m.sha256.length());
        assertEquals(0.5, m.drawThreshold, 0);
        Manifest full = Manifest.parse(Golden.text("manifests/demo-full.json"), "demo-full.json");
        assertEquals(MaskLayout.FULL, full.maskLayout.kind);
    }

    private static void refused(String json, String expected) {
        try {
            Manifest.parse(json, "m.json");
            fail("accepted: " + json);
        } catch (EdgeException.ManifestException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(expected));
        }
    }

    @Test
    public void refusesAnotherSchemaMissingFieldsAndBadJson() throws IOException {
        String good = lowres();
        refused(good.replace("\"schema_version\": 1", "\"schema_version\": 2"), "schema_version 2");
        refused(good.replace("\"labels\"", "\"labelz\""), "'labels'");
        refused(good.replace("\"lowres\"", "\"tiles\""), "unknown mask layout kind");
        refused(good.replace("\"model.nb\"", "\"../model.nb\""), "must be a file name");
        refused(good.substring(0, good.length() / 2), "not valid JSON");
        refused("[]", "must be a JSON object");
    }

    @Test
    public void verifiesTheModelFileAgainstItsSha256() throws Exception {
        byte[] model = "not really a model".getBytes(StandardCharsets.UTF_8);
        String actual = Manifest.hex(java.security.MessageDigest.getInstance("SHA-256").digest(model));
        String json = lowres().replaceAll("\"sha256\": \"[0-9a-f]+\"", "\"sha256\": \"" + actual.toUpperCase() + "\"");
        Manifest m = Manifest.parse(json, "m.json");
        m.verifyModel(new ByteArrayInputStream(model)); // hex case does not matter
        try {
            m.verifyModel(new ByteArrayInputStream("changed".getBytes(StandardCharsets.UTF_8)));
            fail("a changed model file was accepted");
        } catch (EdgeException.ManifestException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("does not match"));
        }
    }
}
