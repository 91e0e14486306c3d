package paddlexedge.demo;

import android.Manifest.permission;
import android.app.Activity;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.graphics.SurfaceTexture;
import android.hardware.Camera;
import android.net.Uri;
import android.os.Bundle;
import android.os.Handler;
import android.os.HandlerThread;
import android.os.Looper;
import android.view.TextureView;
import android.view.View;
import android.widget.AdapterView;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.Spinner;
import android.widget.TextView;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Locale;

import paddlexedge.core.Manifest;
import paddlexedge.core.RgbImage;
import paddlexedge.core.Segmenter;

/**
 * One screen: pick a bundle, threads and power mode; segment a gallery picture or the camera
 * preview; masks, boxes and labels drawn over it; per-stage latency shown. The model runs on a
 * worker thread; everything model-specific comes from the bundle's manifest.
 */
@SuppressWarnings("deprecation") // android.hardware.Camera: the simplest preview API on every API level >= 24
public class MainActivity extends Activity {
    private static final int PICK_IMAGE = 1;
    private static final int CAMERA_PERMISSION = 2;
    private static final Integer[] THREADS = {1, 2, 4, 8};
    private static final int MAX_PICTURE_SIDE = 1920;
    private static final int CAMERA_FRAME_WIDTH = 480;

    private final Handler ui = new Handler(Looper.getMainLooper());
    private HandlerThread worker;
    private Handler work;

    private Spinner modelChoice;
    private Spinner threadChoice;
    private Spinner powerChoice;
    private Button cameraButton;
    private Button galleryButton;
    private TextView status;
    private ImageView picture;
    private TextureView preview;

    // touched on the worker thread only
    private Segmenter segmenter;
    private String modelInfo = "";

    private Camera camera;
    private boolean cameraOn;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        modelChoice = findViewById(R.id.model);
        threadChoice = findViewById(R.id.threads);
        powerChoice = findViewById(R.id.power);
        cameraButton = findViewById(R.id.camera);
        galleryButton = findViewById(R.id.gallery);
        status = findViewById(R.id.status);
        picture = findViewById(R.id.picture);
        preview = findViewById(R.id.preview);

        worker = new HandlerThread("segmenter");
        worker.start();
        work = new Handler(worker.getLooper());

        List<String> bundles;
        try {
            bundles = BundleAssets.list(getAssets());
        } catch (IOException e) {
            bundles = java.util.Collections.emptyList();
        }
        if (bundles.isEmpty()) {
            status.setText(R.string.no_bundle);
            cameraButton.setEnabled(false);
            galleryButton.setEnabled(false);
            return;
        }
        modelChoice.setAdapter(adapter(bundles.toArray(new String[0])));
        threadChoice.setAdapter(adapter(THREADS));
        threadChoice.setSelection(2);
        powerChoice.setAdapter(adapter(LiteModel.POWER_MODES));
        AdapterView.OnItemSelectedListener reload = new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                loadModel();
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        };
        modelChoice.setOnItemSelectedListener(reload);
        threadChoice.setOnItemSelectedListener(reload);
        powerChoice.setOnItemSelectedListener(reload);
        galleryButton.setOnClickListener(v -> {
            stopCamera();
            startActivityForResult(new Intent(Intent.ACTION_GET_CONTENT).setType("image/*"), PICK_IMAGE);
        });
        cameraButton.setOnClickListener(v -> {
            if (cameraOn) {
                stopCamera();
            } else if (checkSelfPermission(permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
                startCamera();
            } else {
                requestPermissions(new String[] {permission.CAMERA}, CAMERA_PERMISSION);
            }
        });
    }

    private <T> ArrayAdapter<T> adapter(T[] items) {
        ArrayAdapter<T> adapter = new ArrayAdapter<>(this, android.R.layout.simple_spinner_item, items);
        adapter.setDropDownViewResource(android.R.layout.simple_spinner_dropdown_item);
        return adapter;
    }

    private void show(String text) {
        ui.post(() -> status.setText(text));
    }

    // ---------------------------------------------------------------------------------- the model
    private void loadModel() {
        final String bundle = (String) modelChoice.getSelectedItem();
        final int threads = (Integer) threadChoice.getSelectedItem();
        final String power = (String) powerChoice.getSelectedItem();
        show("loading " + bundle + " ...");
        work.post(() -> {
            segmenter = null;
            try {
                Manifest manifest = BundleAssets.manifest(getAssets(), bundle);
                if (!"arm".equals(manifest.target)) { // Paddle Lite aborts the process on a .nb for another target
                    show(bundle + " is a '" + manifest.target + "' bundle; the app runs ARM bundles (edge export --target arm)");
                    return;
                }
                File model = BundleAssets.modelFile(this, bundle, manifest);
                LiteModel lite = new LiteModel(model, threads, power);
                segmenter = new Segmenter(manifest, lite);
                modelInfo = String.format(Locale.ROOT, "%s (%s %s, %s masks, %d labels) | Paddle Lite %s | %d threads, %s",
                        manifest.modelName, manifest.target, manifest.precision, manifest.maskLayout.kind, manifest.labels.size(),
                        lite.version(), threads, power);
                show(modelInfo);
            } catch (Exception e) { // a bad bundle is reported, never a crash
                show("cannot load " + bundle + ": " + e.getMessage());
            }
        });
    }

    /** Worker thread: segment one frame, return what to show (the picture with the overlay, or the overlay alone). */
    private Bitmap segment(Bitmap frame, boolean overlayOnly) {
        if (segmenter == null) {
            return null;
        }
        int w = frame.getWidth(), h = frame.getHeight();
        int[] argb = new int[w * h];
        frame.getPixels(argb, 0, w, 0, 0, w, h);
        try {
            Segmenter.Result r = segmenter.segment(RgbImage.fromArgb(argb, w, h), segmenter.manifest().drawThreshold);
            show(String.format(Locale.ROOT, "%s%npre %.1f ms | model %.1f ms | post %.1f ms | %dx%d | %d instance(s)", modelInfo,
                    r.preprocessMs, r.modelMs, r.postprocessMs, w, h, r.detections.size()));
            return Overlay.draw(overlayOnly ? null : frame, w, h, r.detections);
        } catch (RuntimeException e) {
            show("segmentation failed: " + e.getMessage());
            return null;
        }
    }

    // -------------------------------------------------------------------------------- the gallery
    @Override
    protected void onActivityResult(int requestCode, int resultCode, Intent data) {
        super.onActivityResult(requestCode, resultCode, data);
        if (requestCode != PICK_IMAGE || resultCode != RESULT_OK || data == null || data.getData() == null) {
            return;
        }
        final Uri uri = data.getData();
        work.post(() -> {
            Bitmap bitmap = decode(uri);
            if (bitmap == null) {
                show("cannot read that picture");
                return;
            }
            Bitmap drawn = segment(bitmap, false);
            ui.post(() -> picture.setImageBitmap(drawn != null ? drawn : bitmap));
        });
    }

    /** The picture, sub-sampled by a power of two until its longer side is at most MAX_PICTURE_SIDE. */
    private Bitmap decode(Uri uri) {
        try {
            BitmapFactory.Options bounds = new BitmapFactory.Options();
            bounds.inJustDecodeBounds = true;
            try (InputStream in = getContentResolver().openInputStream(uri)) {
                BitmapFactory.decodeStream(in, null, bounds);
            }
            BitmapFactory.Options options = new BitmapFactory.Options();
            options.inPreferredConfig = Bitmap.Config.ARGB_8888;
            while (Math.max(bounds.outWidth, bounds.outHeight) / (options.inSampleSize == 0 ? 1 : options.inSampleSize) > MAX_PICTURE_SIDE) {
                options.inSampleSize = options.inSampleSize == 0 ? 2 : options.inSampleSize * 2;
            }
            try (InputStream in = getContentResolver().openInputStream(uri)) {
                return BitmapFactory.decodeStream(in, null, options);
            }
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    // --------------------------------------------------------------------------------- the camera
    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] grantResults) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults);
        if (requestCode == CAMERA_PERMISSION && grantResults.length > 0 && grantResults[0] == PackageManager.PERMISSION_GRANTED) {
            startCamera();
        } else if (requestCode == CAMERA_PERMISSION) {
            show("camera permission denied");
        }
    }

    private void startCamera() {
        try {
            camera = Camera.open();
        } catch (RuntimeException e) {
            show("cannot open the camera: " + e.getMessage());
            return;
        }
        if (camera == null) {
            show("this device has no back camera");
            return;
        }
        cameraOn = true;
        cameraButton.setText(R.string.stop_camera);
        picture.setImageDrawable(null);
        preview.setVisibility(View.VISIBLE);
        if (preview.isAvailable()) {
            startPreview(preview.getSurfaceTexture());
        }
        preview.setSurfaceTextureListener(new TextureView.SurfaceTextureListener() {
            @Override
            public void onSurfaceTextureAvailable(SurfaceTexture surface, int width, int height) {
                startPreview(surface);
            }

            @Override
            public void onSurfaceTextureSizeChanged(SurfaceTexture surface, int width, int height) {
            }

            @Override
            public boolean onSurfaceTextureDestroyed(SurfaceTexture surface) {
                stopCamera();
                return true;
            }

            @Override
            public void onSurfaceTextureUpdated(SurfaceTexture surface) {
            }
        });
    }

    private void startPreview(SurfaceTexture surface) {
        if (camera == null) {
            return;
        }
        try {
            camera.setDisplayOrientation(90); // the activity is portrait; back cameras are mounted landscape
            Camera.Parameters parameters = camera.getParameters();
            if (parameters.getSupportedFocusModes().contains(Camera.Parameters.FOCUS_MODE_CONTINUOUS_VIDEO)) {
                parameters.setFocusMode(Camera.Parameters.FOCUS_MODE_CONTINUOUS_VIDEO);
                camera.setParameters(parameters);
            }
            camera.setPreviewTexture(surface);
            camera.startPreview();
        } catch (IOException | RuntimeException e) {
            show("cannot start the preview: " + e.getMessage());
            stopCamera();
            return;
        }
        nextFrame();
    }

    /** One frame at a time: grab what the preview shows, segment it, draw the overlay, then the next. */
    private void nextFrame() {
        if (!cameraOn || preview.getWidth() == 0) {
            return;
        }
        int width = Math.min(CAMERA_FRAME_WIDTH, preview.getWidth());
        int height = Math.round((float) width * preview.getHeight() / preview.getWidth());
        final Bitmap frame = preview.getBitmap(width, height);
        if (frame == null) {
            ui.postDelayed(this::nextFrame, 50);
            return;
        }
        work.post(() -> {
            Bitmap overlay = segment(frame, true);
            ui.post(() -> {
                if (cameraOn) {
                    picture.setScaleType(ImageView.ScaleType.FIT_XY); // the overlay covers the preview exactly
                    picture.setImageBitmap(overlay);
                    nextFrame();
                }
            });
        });
    }

    private void stopCamera() {
        cameraOn = false;
        cameraButton.setText(R.string.camera);
        picture.setScaleType(ImageView.ScaleType.FIT_CENTER);
        preview.setVisibility(View.GONE);
        if (camera != null) {
            camera.stopPreview();
            camera.release();
            camera = null;
        }
    }

    @Override
    protected void onPause() {
        super.onPause();
        stopCamera();
    }

    @Override
    protected void onDestroy() {
        super.onDestroy();
        if (worker != null) {
            worker.quitSafely();
        }
    }
}
