package paddlexedge.core;

/** One kept instance: PaddleX's box fields and its mask cropped to the rounded box. */
public final class Detection {
    public final int clsId;
    public final String label;
    public final double score;
    /** [x1, y1, x2, y2] in original-image pixels, clipped to the image. */
    public final double[] coordinate;
    /** The integer crop [x1, y1, x2, y2) the mask covers (the coordinate rounded half to even). */
    public final int[] region;
    public final BinaryMask mask;

    public Detection(int clsId, String label, double score, double[] coordinate, int[] region, BinaryMask mask) {
        this.clsId = clsId;
        this.label = label;
        this.score = score;
        this.coordinate = coordinate;
        this.region = region;
        this.mask = mask;
    }
}
