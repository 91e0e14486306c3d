package paddlexedge.core;

/** Base of every error the core raises; the message says what to do about it. */
public class EdgeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public EdgeException(String message) {
        super(message);
    }

    /** A manifest.json that is missing fields, malformed, of another schema, or does not match model.nb. */
    public static final class ManifestException extends EdgeException {
        private static final long serialVersionUID = 1L;

        public ManifestException(String message) {
            super(message);
        }
    }

    /** A model whose pre-processing or outputs this core cannot handle. */
    public static final class ModelException extends EdgeException {
        private static final long serialVersionUID = 1L;

        public ModelException(String message) {
            super(message);
        }
    }

    /** An input image (or tensor handed to post-processing) that cannot be used. */
    public static final class InputException extends EdgeException {
        private static final long serialVersionUID = 1L;

        public InputException(String message) {
            super(message);
        }
    }
}
