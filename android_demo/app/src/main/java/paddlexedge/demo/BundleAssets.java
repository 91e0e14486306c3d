package paddlexedge.demo;

import android.content.Context;
import android.content.res.AssetManager;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import paddlexedge.core.EdgeException;
import paddlexedge.core.Json;
import paddlexedge.core.Manifest;

/**
 * The bundles `edge bundle --android` copied into assets/models/NAME/ (model.nb + manifest.json),
 * and its choice, assets/models/selected.json = {"bundle": NAME}.
 */
final class BundleAssets {
    static final String ROOT = "models";
    static final String SELECTED = ROOT + "/selected.json";

    private BundleAssets() {
    }

    /** Bundle names, the selected one first. */
    static List<String> list(AssetManager assets) throws IOException {
        List<String> bundles = new ArrayList<>();
        String[] names = assets.list(ROOT);
        for (String name : names == null ? new String[0] : names) {
            String[] files = assets.list(ROOT + "/" + name);
            if (files != null && Arrays.asList(files).contains(Manifest.MANIFEST_FILE)) {
                bundles.add(name);
            }
        }
        Collections.sort(bundles);
        String selected = selected(assets);
        if (selected != null && bundles.remove(selected)) {
            bundles.add(0, selected);
        }
        return bundles;
    }

    private static String selected(AssetManager assets) {
        try {
            Object choice = Json.parse(text(assets, SELECTED));
            Object name = choice instanceof Map ? ((Map<?, ?>) choice).get("bundle") : null;
            return name instanceof String ? (String) name : null;
        } catch (IOException | EdgeException e) {
            return null; // no choice written: the first bundle by name
        }
    }

    static Manifest manifest(AssetManager assets, String bundle) throws IOException {
        String path = ROOT + "/" + bundle + "/" + Manifest.MANIFEST_FILE;
        return Manifest.parse(text(assets, path), "assets/" + path);
    }

    /**
     * model.nb as a file (Paddle Lite loads a path), copied out of the APK once per model version
     * and checked against the manifest's sha256 as the Python runtime does.
     */
    static File modelFile(Context context, String bundle, Manifest manifest) throws IOException {
        File dir = new File(context.getFilesDir(), ROOT + "/" + bundle);
        File model = new File(dir, manifest.modelFile);
        File verified = new File(dir, manifest.sha256 + ".verified");
        if (model.isFile() && verified.isFile()) {
            return model;
        }
        if (!dir.isDirectory() && !dir.mkdirs()) {
            throw new IOException("cannot create " + dir);
        }
        File partial = new File(dir, manifest.modelFile + ".partial");
        try (InputStream in = context.getAssets().open(ROOT + "/" + bundle + "/" + manifest.modelFile);
             OutputStream out = new FileOutputStream(partial)) {
            byte[] buffer = new byte[1 << 16];
            int n;
            while ((n = in.read(buffer)) > 0) {
                out.write(buffer, 0, n);
            }
        }
        try (InputStream in = new FileInputStream(partial)) {
            manifest.verifyModel(in);
        }
        if (!partial.renameTo(model) || !verified.createNewFile()) {
            throw new IOException("cannot write " + model);
        }
        return model;
    }

    private static String text(AssetManager assets, String path) throws IOException {
        try (InputStream in = assets.open(path)) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[8192];
            int n;
            while ((n = in.read(buffer)) > 0) {
                out.write(buffer, 0, n);
            }
            return new String(out.toByteArray(), StandardCharsets.UTF_8);
        }
    }
}
