package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class OpenCvResizeTest {
    @Test
    @SuppressWarnings("unchecked")
    public void reproducesTheRuntimesResizeBitForBit() throws IOException {
        Map<String, Object> resize = (Map<String, Object>) Golden.index().get("resize");
        Map<String, Golden.Array> arrays = Golden.npz((String) resize.get("arrays"));
        List<Object> cases = (List<Object>) resize.get("cases");
        assertTrue(cases.size() >= 10);
        for (Object o : cases) {
            Map<String, Object> c = (Map<String, Object>) o;
            Golden.Array src = arrays.get((String) c.get("src"));
            List<Object> size = (List<Object>) c.get("size");
            int interp = ((Number) c.get("interp")).intValue();
            int dh = ((Number) size.get(0)).intValue(), dw = ((Number) size.get(1)).intValue();
            byte[] got = OpenCvResize.resize(src.bytes(), (int) src.shape[1], (int) src.shape[0], 3, dw, dh, interp);
            assertArrayEquals(c.toString(), arrays.get((String) c.get("dst")).bytes(), got);
        }
    }

    @Test
    public void sameSizeIsACopyAndUnsupportedInterpIsAModelError() {
        byte[] src = {1, 2, 3, 4, 5, 6};
        byte[] out = OpenCvResize.resize(src, 2, 1, 3, 2, 1, OpenCvResize.INTER_CUBIC);
        assertArrayEquals(src, out);
        assertTrue(out != src);
        try {
            OpenCvResize.resize(src, 2, 1, 3, 4, 2, 3);
            throw new AssertionError("INTER_AREA must be refused");
        } catch (EdgeException.ModelException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("interp 3"));
        }
    }

    @Test
    public void constantImageStaysConstantForEveryInterp() {
        byte[] src = new byte[7 * 5 * 3];
        java.util.Arrays.fill(src, (byte) 200);
        for (int interp = 0; interp <= 2; interp++) {
            byte[] out = OpenCvResize.resize(src, 7, 5, 3, 19, 11, interp);
            assertEquals(19 * 11 * 3, out.length);
            for (byte b : out) {
                assertEquals(200, b & 0xff);
            }
        }
    }

    @Test(expected = EdgeException.InputException.class)
    public void wrongBufferSizeIsAnInputError() {
        OpenCvResize.resize(new byte[5], 2, 1, 3, 4, 2, 1);
    }
}
