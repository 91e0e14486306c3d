package paddlexedge.core;

import java.util.List;

/** Pre-processing, the model, post-processing for one image, with the time each stage took. */
public final class Segmenter {
    /** The kept instances and per-stage wall time in milliseconds. */
    public static final class Result {
        public final List<Detection> detections;
        public final double preprocessMs;
        public final double modelMs;
        public final double postprocessMs;

        Result(List<Detection> detections, double preprocessMs, double modelMs, double postprocessMs) {
            this.detections = detections;
            this.preprocessMs = preprocessMs;
            this.modelMs = modelMs;
            this.postprocessMs = postprocessMs;
        }
    }

    private final Manifest manifest;
    private final Preprocessor preprocessor;
    private final Postprocessor postprocessor;
    private final ModelRunner model;

    public Segmenter(Manifest manifest, ModelRunner model) {
        this.manifest = manifest;
        this.preprocessor = new Preprocessor(manifest);
        this.postprocessor = new Postprocessor(manifest);
        this.model = model;
    }

    public Manifest manifest() {
        return manifest;
    }

    public Result segment(RgbImage image, double threshold) {
        if (!(threshold > 0 && threshold < 1)) {
            throw new EdgeException.InputException("threshold must be in (0, 1), got " + threshold);
        }
        long t0 = System.nanoTime();
        Feeds feeds = preprocessor.run(image);
        long t1 = System.nanoTime();
        ModelRunner.RawOutputs raw = model.run(feeds);
        long t2 = System.nanoTime();
        List<Detection> detections = postprocessor.run(raw.bbox, raw.bboxNum, raw.mask, image.height, image.width,
                feeds.scaleFactor, threshold);
        long t3 = System.nanoTime();
        return new Result(detections, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6);
    }
}
