package paddlexedge.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    @SuppressWarnings("unchecked")
    public void readsEveryKindOfValue() {
        Map<String, Object> m = (Map<String, Object>) Json.parse(
                " {\"a\": [1, -2.5, 1e3, 0], \"s\": \"x\\\"y\\u00e9\\n\", \"t\": true, \"f\": false, \"n\": null, \"o\": {}} ");
        assertEquals(Arrays.<Object>asList(1L, -2.5, 1000.0, 0L), m.get("a"));
        assertEquals("x\"y\u00e9\n", m.get("s"));
        assertEquals(Boolean.TRUE, m.get("t"));
        assertEquals(Boolean.FALSE, m.get("f"));
        assertTrue(m.containsKey("n"));
        assertNull(m.get("n"));
        assertTrue(((Map<String, Object>) m.get("o")).isEmpty());
        assertEquals(Arrays.asList("a", "s", "t", "f", "n", "o"), new java.util.ArrayList<String>(m.keySet()));
        assertEquals(0.1 + 0.2, ((List<Object>) Json.parse("[0.30000000000000004]")).get(0));
    }

    @Test
    public void refusesMalformedText() {
        String[] bad = {"", "{", "[1,]", "{\"a\" 1}", "{'a': 1}", "[1] x", "tru", "01", "1.", "\"\\q\"", "\"a\nb\"", "[-]", "{\"a\":1,}"};
        for (String text : bad) {
            try {
                Json.parse(text);
                fail("accepted " + text);
            } catch (EdgeException.ManifestException e) {
                assertTrue(e.getMessage().startsWith("invalid JSON"));
            }
        }
    }

    @Test(expected = EdgeException.ManifestException.class)
    public void refusesDeepNesting() {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 100; i++) {
            s.append('[');
        }
        Json.parse(s.toString());
    }
}
