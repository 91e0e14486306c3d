package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.List;
import org.junit.Test;

/** Rules the golden vectors do not reach (no real output has cls -1 or a zero-area box). */
public class PostprocessorTest {
    private static Manifest manifest(String layout) throws Exception {
        String json = Golden.text("manifests/demo-lowres.json");
        if (layout.equals(MaskLayout.FULL)) {
            json = json.replace("\"kind\": \"lowres\"", "\"kind\": \"full\"").replace("\"stride\": 4", "\"stride\": 1");
        }
        return Manifest.parse(json, "m.json");
    }

    @Test
    public void keepsStrictlyAboveTheThresholdInFloat32AndDropsClassMinusOne() throws Exception {
        float f03 = 0.3f; // 0.30000001192..., not above 0.3 once the threshold is float32 too
        float[] bbox = {
            0, f03, 1, 1, 5, 5,
            1, 0.31f, 1, 1, 5, 5,
            -1, 0.9f, 1, 1, 5, 5,
            2, 0.9f, 3, 3, 3.4f, 9, // rounds to zero width: dropped with its mask
            3, 0.9f, 1, 1, 5, 5,    // beyond bbox_num
        };
        MaskTensor mask = MaskTensor.ofInts(new int[5 * 8 * 8], new long[] {5, 8, 8});
        List<Detection> kept = new Postprocessor(manifest(MaskLayout.FULL)).run(bbox, new int[] {4}, mask, 8, 8, new float[] {1, 1}, 0.3);
        assertEquals(1, kept.size());
        assertEquals(1, kept.get(0).clsId);
        assertEquals("rectangle", kept.get(0).label);
    }

    @Test
    public void clipsBoxesAndZeroFillsWhereTheFullMaskIsSmallerThanTheImage() throws Exception {
        int[] data = new int[1 * 6 * 5]; // mask 6x5 for an image of 8x6 (h x w): one column and two rows short
        java.util.Arrays.fill(data, 1);
        MaskTensor mask = MaskTensor.ofInts(data, new long[] {1, 6, 5});
        float[] bbox = {0, 0.9f, -3, 2.5f, 40, 7.5f};
        Detection d = new Postprocessor(manifest(MaskLayout.FULL)).run(bbox, new int[] {1}, mask, 8, 6, new float[] {1, 1}, 0.5).get(0);
        assertArrayEquals(new double[] {0, 2.5, 6, 7.5}, d.coordinate, 0);
        assertArrayEquals(new int[] {0, 2, 6, 8}, d.region); // round half to even: 2.5 -> 2, 7.5 -> 8
        assertEquals(6, d.mask.height);
        assertEquals(6, d.mask.width);
        for (int y = 0; y < 6; y++) {
            for (int x = 0; x < 6; x++) {
                assertEquals("(" + y + "," + x + ")", y + 2 < 6 && x < 5, d.mask.get(y, x));
            }
        }
    }

    @Test
    public void lowresMaskIsSampledBilinearlyInsideTheBox() throws Exception {
        // a 4x4 low-res mask (stride 4 over a 16x16 input) of an image of the same size: column 2 is set
        float[] data = new float[16];
        for (int y = 0; y < 4; y++) {
            data[y * 4 + 2] = 1f;
        }
        MaskTensor mask = MaskTensor.ofFloats(data, new long[] {1, 4, 4});
        float[] bbox = {7, 0.9f, 0, 0, 16, 16};
        Detection d = new Postprocessor(manifest(MaskLayout.LOWRES)).run(bbox, new int[] {1}, mask, 16, 16, new float[] {1, 1}, 0.5).get(0);
        // u = (x + 0.5) / 4 - 0.5 samples column 2 with weight > 0.5 for x in 8..11 (u in 1.625..2.375 around 2)
        for (int x = 0; x < 16; x++) {
            double u = (x + 0.5) / 4 - 0.5;
            boolean expected = Math.abs(u - 2) < 0.5;
            assertEquals("x=" + x, expected, d.mask.get(5, x));
        }
        assertEquals("7", d.label); // beyond the labels: the id itself
        assertTrue(d.mask.area() > 0);
    }

    @Test(expected = EdgeException.InputException.class)
    public void aBboxThatIsNotRowsOfSixIsAnInputError() throws Exception {
        new Postprocessor(manifest(MaskLayout.FULL)).run(new float[7], new int[0], MaskTensor.ofInts(new int[1], new long[] {1, 1, 1}),
                1, 1, new float[] {1, 1}, 0.5);
    }
}
