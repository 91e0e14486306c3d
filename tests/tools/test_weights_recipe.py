"""tools/ppdet_reference/weights_recipe.py: the recipe the PaddleDetection harness and our tests share."""
import numpy as np
import pytest

from tools.ppdet_reference import weights_recipe


def state():
    rng = np.random.default_rng(3)
    return {
        "conv.weight": rng.normal(0, 0.2, (16, 8, 3, 3)).astype("float32"),      # drawn: normal
        "fc.weight": rng.uniform(-0.5, 0.5, (64, 32)).astype("float32"),         # drawn: uniform
        "fc.bias": rng.uniform(-0.1, 0.1, 32).astype("float32"),                 # small: verbatim
        "bn.weight": np.ones(8, "float32"), "bn.bias": np.zeros(8, "float32"),
        "bn._mean": np.zeros(8, "float32"), "bn._variance": np.ones(8, "float32"),
        "head.weight": np.zeros((32, 4), "float32"),                             # zero-initialised
    }


def test_describe_recognises_constants_distributions_and_small_tensors():
    tensors = weights_recipe.describe(state())["tensors"]
    kinds = {name: entry["kind"] for name, entry in tensors.items()}
    assert kinds == {"conv.weight": "normal", "fc.weight": "uniform", "fc.bias": "verbatim", "bn.weight": "const",
                     "bn.bias": "const", "bn._mean": "const", "bn._variance": "const", "head.weight": "const"}
    assert tensors["conv.weight"]["std"] == pytest.approx(0.2, rel=0.1)


def test_plain_weights_are_deterministic_and_keep_the_statistics(tmp_path):
    original = state()
    path = tmp_path / "recipe.npz"
    weights_recipe.save_recipe(weights_recipe.describe(original), path)
    a = weights_recipe.materialise(weights_recipe.load_recipe(path), "plain", seed=5)
    b = weights_recipe.materialise(weights_recipe.load_recipe(path), "plain", seed=5)
    assert list(a) == list(original)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].dtype == np.float32 and a[name].shape == original[name].shape
    np.testing.assert_array_equal(a["fc.bias"], original["fc.bias"])
    assert 0.45 < abs(a["fc.weight"]).max() < 0.55 and a["conv.weight"].std() == pytest.approx(0.2, rel=0.15)
    assert not np.array_equal(a["conv.weight"], weights_recipe.materialise(weights_recipe.load_recipe(path), "plain", 6)["conv.weight"])


def test_perturbed_weights_change_every_constant_and_bias_and_honour_overrides(tmp_path):
    recipe = weights_recipe.describe(state())
    plain = weights_recipe.materialise(recipe, "plain")
    perturbed = weights_recipe.materialise(recipe, "perturbed")
    for name in ("bn.weight", "bn.bias", "bn._mean", "bn._variance", "head.weight", "fc.bias"):
        assert not np.array_equal(plain[name], perturbed[name]), name
    assert (perturbed["bn._variance"] > 0).all()
    np.testing.assert_array_equal(plain["conv.weight"], perturbed["conv.weight"])
    recipe["overrides"] = {"fc.bias": np.full(32, 7.0, "float32")}
    weights_recipe.save_recipe(recipe, tmp_path / "r.npz")
    loaded = weights_recipe.load_recipe(tmp_path / "r.npz")
    assert (weights_recipe.materialise(loaded, "perturbed")["fc.bias"] == 7.0).all()
    np.testing.assert_array_equal(weights_recipe.materialise(loaded, "plain")["fc.bias"], plain["fc.bias"])


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="plain, perturbed"):
        weights_recipe.materialise(weights_recipe.describe(state()), "noisy")
