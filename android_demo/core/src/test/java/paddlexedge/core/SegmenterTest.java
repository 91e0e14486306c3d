package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The app's path (pre -> model -> post) with the model replaced by the raw outputs Paddle Lite gave the runtime. */
public class SegmenterTest {
    @Test
    @SuppressWarnings("unchecked")
    public void wiresTheStagesAsTheRuntimeDoes() throws Exception {
        for (Map<String, Object> c : Golden.cases()) {
            final Map<String, Golden.Array> a = Golden.npz((String) c.get("arrays"));
            Manifest manifest = Manifest.parse(Golden.text((String) c.get("manifest")), "m.json");
            final MaskTensor mask = new GoldenParityTest.StoredRows(a.get("mask_rows"), a.get("mask"), (List<Object>) c.get("mask_shape"));
            Segmenter segmenter = new Segmenter(manifest, new ModelRunner() {
                @Override
                public RawOutputs run(Feeds feeds) {
                    assertArrayEquals(a.get("image").floats(), feeds.image, 0f); // the model sees the runtime's tensor
                    return new RawOutputs(a.get("bbox").floats(), a.get("bbox_num").ints(), mask);
                }
            });
            Golden.Array bgr = a.get("image_bgr");
            Segmenter.Result r = segmenter.segment(RgbImage.fromBgr(bgr.bytes(), (int) bgr.shape[1], (int) bgr.shape[0]),
                    ((Number) c.get("threshold")).doubleValue());
            List<Object> want = (List<Object>) c.get("results");
            assertEquals(want.size(), r.detections.size());
            for (int i = 0; i < want.size(); i++) {
                Map<String, Object> w = (Map<String, Object>) want.get(i);
                assertEquals(((Map<String, Object>) w.get("mask")).get("rleResult"), Rle.encode(r.detections.get(i).mask));
            }
            assertTrue(r.preprocessMs >= 0 && r.modelMs >= 0 && r.postprocessMs >= 0);
        }
    }

    @Test(expected = EdgeException.InputException.class)
    public void aThresholdOutsideZeroToOneIsAnInputError() throws Exception {
        Manifest manifest = Manifest.parse(Golden.text("manifests/demo-lowres.json"), "m.json");
        new Segmenter(manifest, null).segment(new RgbImage(1, 1, new byte[3]), 1.0);
    }
}
