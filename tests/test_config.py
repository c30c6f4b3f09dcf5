import pytest

from gan.config import load_config
from gan.errors import ConfigError


def test_defaults_file_and_overrides_layer_in_that_order(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  lr: 1e-3\n  epochs: 3\nmodel:\n  start_filters: 16\n")
    config = load_config(path, ["train.epochs=5", "data.noise_sigma=0.01"])
    assert config.train.lr == 1e-3  # written YAML-1.1 style, still a float
    assert config.train.epochs == 5
    assert config.train.batch_size == 4  # untouched default
    assert config.model == {"name": "light_unet", "start_filters": 16}
    assert config.data.degradation.noise_sigma == 0.01  # data.noise_sigma: the older spelling, still accepted


@pytest.mark.parametrize(
    "override, message",
    [
        (["train.learning_rate=1"], "unknown config key 'train.learning_rate'"),
        (["train.epochs=two"], "'train.epochs' must be int"),
        (["train.epochs=0"], "train.epochs must be >= 1"),
        (["train.lr=-1"], "train.lr must be > 0"),
        (["train.max_minutes=-1"], "train.max_minutes must be a number of minutes >= 0"),
        (["train.max_minutes=.inf"], "must be finite"),
        (["data.kernel_size=8"], "data.degradation.kernel_size must be odd"),
        (["data.source=flickr"], "data.source must be one of embedded, folder, gopro"),
        (["data.source=gopro"], "data.source .gopro. needs data.root"),
        (["data.kernels={box: 1}"], "data.degradation.kernels: unknown kind .box."),
        (["data.on_bad=ignore"], "data.on_bad must be fail or skip"),
        (["model.name=resnet"], "unknown network 'resnet'"),
        (["model.depth=3"], "unknown config key 'model.depth'"),
        (["model.start_filters=wide"], "model.start_filters must be int"),
        (["nosection=1"], "must look like section.key=value"),
        (["train.device=tpu"], "train.device must be"),
        (["train.amp=off"], "YAML reads off, on, yes and no as booleans, so quote the word: train.amp='off'"),
        (["data.blur_extent_law=cubic"], "data.degradation.blur_extent_law must be one of uniform, log"),
    ],
)
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(None, override)


def test_a_quoted_off_is_the_word():
    assert load_config(None, ["train.amp='off'"]).train.amp == "off"


def test_bad_config_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(scalar)


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_overrides_reach_into_nested_mappings():
    config = load_config(None, ["adv.critic.n_layers=4", "adv.critic.name=patchgan", "train.detail_losses.fft=0.1"])
    assert config.adv.critic == {"name": "patchgan", "n_layers": 4}
    assert config.train.detail_losses == {"fft": 0.1}
    with pytest.raises(ConfigError, match="unknown config key 'adv.critic.depth' for network 'patchgan'"):
        load_config(None, ["adv.critic.depth=4"])
    with pytest.raises(ConfigError, match="config section 'train.epochs' is not a mapping"):
        load_config(None, ["train.epochs=3", "train.epochs.inner=1"])


def test_every_problem_is_reported_at_once_on_one_line():
    with pytest.raises(ConfigError) as raised:
        load_config(None, ["train.bogus=1", "train.amp=half", "model.start_filters=wide", "log.perceptual=vmaf",
                           "train.epochs=0"])
    message = str(raised.value)
    assert message.startswith("5 config problems: ") and "\n" not in message
    for part in ("unknown config key 'train.bogus'", "train.amp must be one of off, auto, bf16, fp16, got 'half'",
                 "model.start_filters must be int", "log.perceptual must be one of none, cvvdp, flip",
                 "train.epochs must be >= 1"):
        assert part in message


def test_closed_choices_come_from_the_registries():
    from evaluation.offline_metrics import LOADERS
    from losses.adversarial import GAN_TYPES

    for gan_type in GAN_TYPES:
        assert load_config(None, [f"adv.gan_type={gan_type}"]).adv.gan_type == gan_type
    for metric in LOADERS:
        assert load_config(None, [f"log.perceptual={metric}"]).log.perceptual == metric
    with pytest.raises(ConfigError, match="adv.perceptual_criterion must be one of mse, l1, got 'l2'"):
        load_config(None, ["adv.perceptual_criterion=l2"])
