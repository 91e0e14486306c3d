package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

/** Ops the golden manifests do not use (Pad, PadStride, mean/std, keep_ratio), against hand-computed values. */
public class PreprocessorTest {
    private static Manifest withOps(String opsJson) throws Exception {
        String json = Golden.text("manifests/demo-lowres.json");
        int start = json.indexOf("\"preprocess\"");
        int end = json.indexOf("\"labels\"");
        return Manifest.parse(json.substring(0, start) + "\"preprocess\": " + opsJson + ",\n  " + json.substring(end), "m.json");
    }

    private static RgbImage image(int w, int h) {
        byte[] rgb = new byte[w * h * 3];
        for (int i = 0; i < rgb.length; i++) {
            rgb[i] = (byte) (i * 7);
        }
        return new RgbImage(w, h, rgb);
    }

    @Test
    public void meanStdNormalisationWithPaddleXsConstantsAndChw() throws Exception {
        Manifest m = withOps("[{\"type\": \"NormalizeImage\", \"mean\": [0.485, 0.456, 0.406], \"std\": [0.229, 0.224, 0.225], "
                + "\"is_scale\": true}, {\"type\": \"Permute\"}]");
        RgbImage img = image(3, 2);
        Feeds f = new Preprocessor(m).run(img);
        assertEquals(3, f.channels);
        double[] mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
        for (int c = 0; c < 3; c++) {
            // the runtime's (and PaddleX's) arithmetic: constants in double, rounded to float, then x * alpha + beta in float
            float alpha = (float) (1.0 / 255.0 / std[c]), beta = (float) (-mean[c] / std[c]);
            for (int i = 0; i < 6; i++) {
                float expected = (img.rgb[i * 3 + c] & 0xff) * alpha + beta;
                assertEquals(expected, f.image[c * 6 + i], 0f);
            }
        }
        assertArrayEquals(new float[] {2, 3}, f.imShape, 0);
        assertArrayEquals(new float[] {1, 1}, f.scaleFactor, 0);
    }

    @Test
    public void keepRatioRoundsHalfToEvenAndPadsBottomRight() throws Exception {
        // scale = min(100/53, 64/37) = 1.7297...; 37 * s = 64, 53 * s = 91.67 -> 92
        Manifest m = withOps("[{\"type\": \"Resize\", \"target_size\": [64, 100], \"keep_ratio\": true, \"interp\": 1}, "
                + "{\"type\": \"Pad\", \"size\": [70, 96]}, {\"type\": \"Permute\"}, {\"type\": \"PadStride\", \"stride\": 32}]");
        Feeds f = new Preprocessor(m).run(image(53, 37));
        assertArrayEquals(new float[] {64, 92}, f.imShape, 0);
        assertArrayEquals(new float[] {64f / 37, 92f / 53}, f.scaleFactor, 1e-7f);
        assertEquals(96, f.height); // Pad to 70x96, then PadStride to multiples of 32
        assertEquals(96, f.width);
        assertEquals(127.5f, f.image[65 * 96 + 10], 0); // Pad's fill below the image
        assertEquals(0f, f.image[80 * 96 + 10], 0); // PadStride's zeros below the Pad
        assertEquals(127.5f, f.image[10 * 96 + 93], 0);
    }

    @Test
    public void unsupportedOpsAreModelErrors() throws Exception {
        String[] ops = {"[{\"type\": \"WarpAffine\"}]",
                        "[{\"type\": \"Resize\", \"target_size\": 8, \"interp\": 4}]",
                        "[{\"type\": \"NormalizeImage\", \"std\": [1, 0, 1]}]"};
        for (String op : ops) {
            try {
                new Preprocessor(withOps(op));
                fail("accepted " + op);
            } catch (EdgeException.ModelException e) {
                assertTrue(e.getMessage().length() > 20);
            }
        }
        try {
            new Preprocessor(withOps("[{\"type\": \"Permute\"}, {\"type\": \"Resize\", \"target_size\": 8}]")).run(image(4, 4));
            fail("resize after permute was accepted");
        } catch (EdgeException.ModelException e) {
            assertTrue(e.getMessage().contains("Resize must come before"));
        }
    }

    @Test(expected = EdgeException.InputException.class)
    public void aBufferOfTheWrongSizeIsAnInputError() {
        new RgbImage(4, 4, new byte[10]);
    }
}
