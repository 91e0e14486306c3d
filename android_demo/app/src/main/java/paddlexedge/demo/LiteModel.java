package paddlexedge.demo;

import com.baidu.paddle.lite.MobileConfig;
import com.baidu.paddle.lite.PaddlePredictor;
import com.baidu.paddle.lite.PowerMode;
import com.baidu.paddle.lite.Tensor;

import java.io.File;

import paddlexedge.core.EdgeException;
import paddlexedge.core.Feeds;
import paddlexedge.core.MaskTensor;
import paddlexedge.core.ModelRunner;

/** The bundle's model.nb in Paddle Lite (Java API: MobileConfig + PaddlePredictor). */
final class LiteModel implements ModelRunner {
    static final String[] POWER_MODES = {"LITE_POWER_HIGH", "LITE_POWER_LOW", "LITE_POWER_FULL", "LITE_POWER_NO_BIND",
            "LITE_POWER_RAND_HIGH", "LITE_POWER_RAND_LOW"};

    private final PaddlePredictor predictor;

    LiteModel(File modelFile, int threads, String powerMode) {
        MobileConfig config = new MobileConfig();
        config.setModelFromFile(modelFile.getAbsolutePath());
        config.setThreads(threads);
        config.setPowerMode(PowerMode.valueOf(powerMode));
        predictor = PaddlePredictor.createPaddlePredictor(config);
        if (predictor == null) {
            throw new EdgeException.ModelException("Paddle Lite could not load " + modelFile.getName() + ": is it an ARM .nb made by "
                    + "paddle_lite_opt 2.13-rc (edge export --target arm)?");
        }
    }

    String version() {
        return predictor.getVersion();
    }

    @Override
    public RawOutputs run(Feeds feeds) {
        // By position, in the manifest's input order: the Java API has no input names, and
        // tools/golden checks that Paddle Lite takes the inputs in that order.
        feed(0, new long[] {1, 2}, feeds.imShape);
        feed(1, feeds.imageShape(), feeds.image);
        feed(2, new long[] {1, 2}, feeds.scaleFactor);
        if (!predictor.run()) {
            throw new EdgeException.ModelException("Paddle Lite failed running the model");
        }
        Tensor bbox = predictor.getOutput(0);
        Tensor bboxNum = predictor.getOutput(1);
        Tensor mask = predictor.getOutput(2);
        // Masks are read as float: low-resolution masks are float, and full-size 0/1 masks (float
        // or int32) test non-zero the same either way, which is all post-processing asks of them.
        return new RawOutputs(bbox.getFloatData(), bboxNum.getIntData(), MaskTensor.ofFloats(mask.getFloatData(), mask.shape()));
    }

    private void feed(int index, long[] shape, float[] data) {
        Tensor input = predictor.getInput(index);
        if (input == null || !input.resize(shape) || !input.setData(data)) {
            throw new EdgeException.ModelException("cannot set input " + index + " of the model: does the bundle's manifest list "
                    + "its inputs (im_shape, image, scale_factor) in the model's order?");
        }
    }
}
