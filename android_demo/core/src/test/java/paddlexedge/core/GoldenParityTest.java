package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.AfterClass;
import org.junit.Test;

/**
 * The Java core against the golden vectors the Python runtime wrote (tests/golden): the same image
 * gives the same feeds, the same raw outputs give the same boxes and masks.
 * Limits (issue 14): tensors within 1e-5, boxes within 1e-3 px, masks >= 99.9 % of pixels equal.
 */
public class GoldenParityTest {
    private static double maxTensorDiff;
    private static double maxBoxDiff;
    private static double maxScoreDiff;
    private static long maskPixels;
    private static long maskPixelsEqual;
    private static int detections;

    /** The model's mask output holding only the rows the vectors store; reading another row fails. */
    static final class StoredRows extends MaskTensor {
        private final Map<Integer, Integer> rowOf = new HashMap<Integer, Integer>();
        private final float[] data;

        StoredRows(Golden.Array rows, Golden.Array mask, List<Object> fullShape) {
            super(((Number) fullShape.get(0)).intValue(), ((Number) fullShape.get(1)).intValue(), ((Number) fullShape.get(2)).intValue());
            int[] index = rows.ints();
            for (int i = 0; i < index.length; i++) {
                rowOf.put(index[i], i);
            }
            data = mask.floats();
        }

        private int at(int instance, int y, int x) {
            Integer row = rowOf.get(instance);
            if (row == null) {
                fail("post-processing read mask row " + instance + ", which it drops");
            }
            return (row * height + y) * width + x;
        }

        @Override
        public float get(int instance, int y, int x) {
            return data[at(instance, y, x)];
        }

        @Override
        public boolean isSet(int instance, int y, int x) {
            return data[at(instance, y, x)] != 0f;
        }
    }

    private static Manifest manifestOf(Map<String, Object> c) throws IOException {
        return Manifest.parse(Golden.text((String) c.get("manifest")), (String) c.get("manifest"));
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        assertEquals("length", b.length, a.length);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }

    @Test
    public void feedsMatchTheRuntimes() throws IOException {
        for (Map<String, Object> c : Golden.cases()) {
            Manifest manifest = manifestOf(c);
            Map<String, Golden.Array> a = Golden.npz((String) c.get("arrays"));
            Golden.Array bgr = a.get("image_bgr");
            RgbImage image = RgbImage.fromBgr(bgr.bytes(), (int) bgr.shape[1], (int) bgr.shape[0]);
            Feeds feeds = new Preprocessor(manifest).run(image);
            assertArrayEquals(a.get("image").shape, feeds.imageShape());
            double diff = Math.max(maxAbsDiff(feeds.image, a.get("image").floats()),
                    Math.max(maxAbsDiff(feeds.imShape, a.get("im_shape").floats()), maxAbsDiff(feeds.scaleFactor, a.get("scale_factor").floats())));
            maxTensorDiff = Math.max(maxTensorDiff, diff);
            assertTrue(c.get("name") + ": feeds differ by " + diff, diff <= 1e-5);
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    public void resultsMatchTheRuntimes() throws IOException {
        for (Map<String, Object> c : Golden.cases()) {
            String name = (String) c.get("name");
            Manifest manifest = manifestOf(c);
            Map<String, Golden.Array> a = Golden.npz((String) c.get("arrays"));
            Golden.Array bgr = a.get("image_bgr");
            MaskTensor mask = new StoredRows(a.get("mask_rows"), a.get("mask"), (List<Object>) c.get("mask_shape"));
            List<Detection> got = new Postprocessor(manifest).run(a.get("bbox").floats(), a.get("bbox_num").ints(), mask,
                    (int) bgr.shape[0], (int) bgr.shape[1], a.get("scale_factor").floats(), ((Number) c.get("threshold")).doubleValue());
            List<Object> want = (List<Object>) c.get("results");
            assertEquals(name + ": kept instances", want.size(), got.size());
            for (int i = 0; i < got.size(); i++) {
                Detection d = got.get(i);
                Map<String, Object> w = (Map<String, Object>) want.get(i);
                assertEquals(name, ((Number) w.get("cls_id")).intValue(), d.clsId);
                assertEquals(name, w.get("label"), d.label);
                maxScoreDiff = Math.max(maxScoreDiff, Math.abs(d.score - ((Number) w.get("score")).doubleValue()));
                List<Object> coordinate = (List<Object>) w.get("coordinate");
                for (int k = 0; k < 4; k++) {
                    double diff = Math.abs(d.coordinate[k] - ((Number) coordinate.get(k)).doubleValue());
                    maxBoxDiff = Math.max(maxBoxDiff, diff);
                    assertTrue(name + ": box differs by " + diff + " px", diff <= 1e-3);
                }
                List<Object> region = (List<Object>) w.get("region");
                for (int k = 0; k < 4; k++) {
                    assertEquals(name + ": crop region", ((Number) region.get(k)).intValue(), d.region[k]);
                }
                Map<String, Object> rle = (Map<String, Object>) w.get("mask");
                List<Object> size = (List<Object>) rle.get("size");
                BinaryMask expected = Rle.decode((String) rle.get("rleResult"), ((Number) size.get(0)).intValue(), ((Number) size.get(1)).intValue());
                assertEquals(name + ": mask height", expected.height, d.mask.height);
                assertEquals(name + ": mask width", expected.width, d.mask.width);
                long equal = 0;
                for (int p = 0; p < expected.data.length; p++) {
                    equal += expected.data[p] == d.mask.data[p] ? 1 : 0;
                }
                maskPixels += expected.data.length;
                maskPixelsEqual += equal;
                assertTrue(name + ": mask agreement " + equal + "/" + expected.data.length, equal >= 0.999 * expected.data.length);
                assertEquals(name + ": the server's RLE of this mask", rle.get("rleResult"), Rle.encode(d.mask));
                detections++;
            }
        }
        assertTrue(maxScoreDiff <= 1e-6);
    }

    @AfterClass
    public static void report() {
        System.out.printf("GOLDEN PARITY: max |feeds diff| %.3g, max |box diff| %.3g px, max |score diff| %.3g, "
                + "mask pixels equal %d/%d (%.4f %%) over %d detections%n", maxTensorDiff, maxBoxDiff, maxScoreDiff,
                maskPixelsEqual, maskPixels, maskPixels == 0 ? 0.0 : 100.0 * maskPixelsEqual / maskPixels, detections);
    }
}
