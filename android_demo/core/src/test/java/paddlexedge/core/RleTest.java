package paddlexedge.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import java.util.Random;
import org.junit.Test;

public class RleTest {
    @Test
    public void roundTripsRandomMasksOfEveryShape() {
        Random random = new Random(14);
        for (int trial = 0; trial < 200; trial++) {
            int h = 1 + random.nextInt(40), w = 1 + random.nextInt(40);
            byte[] data = new byte[h * w];
            double density = random.nextDouble();
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (random.nextDouble() < density ? 1 : 0);
            }
            BinaryMask mask = new BinaryMask(h, w, data);
            BinaryMask back = Rle.decode(Rle.encode(mask), h, w);
            assertArrayEquals(data, back.data);
        }
    }

    @Test
    public void runsAreColumnMajorStartingWithZeros() {
        // 2x3, rows [1 0 0], [1 1 0] -> column-major 1 1 0 1 0 0 -> runs 0, 2, 1, 1, 2
        BinaryMask mask = new BinaryMask(2, 3, new byte[] {1, 0, 0, 1, 1, 0});
        assertArrayEquals(new int[] {0, 2, 1, 1, 2}, Rle.counts(mask));
        // pycocotools.mask.encode(np.asfortranarray([[1,0,0],[1,1,0]], dtype=np.uint8))['counts'] == b'021O1'
        assertEquals("021O1", Rle.encode(mask));
    }

    @Test
    public void refusesStringsThatDoNotFitTheSize() {
        String[] bad = {"021O1x", "02", "0", "\u007f"};
        for (String s : bad) {
            try {
                Rle.decode(s, 2, 3);
                fail("accepted " + s);
            } catch (EdgeException.InputException expected) {
                // the message names the problem
            }
        }
    }
}
