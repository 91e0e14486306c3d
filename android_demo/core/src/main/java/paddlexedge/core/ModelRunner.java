package paddlexedge.core;

/** Runs the model on one image's feeds; the app implements it with Paddle Lite's PaddlePredictor. */
public interface ModelRunner {
    /** The model's first three outputs for the feeds: bbox, bbox_num, mask. */
    RawOutputs run(Feeds feeds);

    /** The model's raw outputs. */
    final class RawOutputs {
        public final float[] bbox;
        public final int[] bboxNum;
        public final MaskTensor mask;

        public RawOutputs(float[] bbox, int[] bboxNum, MaskTensor mask) {
            this.bbox = bbox;
            this.bboxNum = bboxNum;
            this.mask = mask;
        }
    }
}
