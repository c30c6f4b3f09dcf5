import numpy as np
import pytest
import torch

from datasets import DataError, build_datasets, read_image
from datasets.blur import center_crop, synthesize
from datasets.kernels import delta_kernel, random_motion_kernel
from datasets.photos import TRAIN_PHOTOS, VAL_PHOTOS
from datasets.synthetic import synthesize_batch
from helpers import data_config


def test_kernels_sum_to_one_stay_inside_and_are_deterministic_per_seed():
    first = [random_motion_kernel(15, np.random.default_rng(7)) for _ in range(3)]
    assert all(torch.equal(first[0], k) for k in first)
    different = random_motion_kernel(15, np.random.default_rng(8))
    assert not torch.equal(first[0], different)
    rng = np.random.default_rng(0)
    for _ in range(100):
        kernel = random_motion_kernel(15, rng)
        assert abs(kernel.sum().item() - 1) < 1e-5
        assert (kernel >= 0).all()
        assert kernel[0].sum() == kernel[-1].sum() == kernel[:, 0].sum() == kernel[:, -1].sum() == 0


def test_motion_kernels_are_centred_so_blur_does_not_shift_the_image():
    rng = np.random.default_rng(1)
    coordinates = torch.arange(21.0)
    for _ in range(20):
        kernel = random_motion_kernel(21, rng)
        assert abs((kernel.sum(0) * coordinates).sum().item() - 10) < 0.51
        assert abs((kernel.sum(1) * coordinates).sum().item() - 10) < 0.51


def test_delta_kernel_leaves_the_image_unchanged():
    image = torch.rand(2, 3, 20, 24)
    blurred = synthesize(image, torch.stack([delta_kernel(5)] * 2))[0]
    assert torch.allclose(blurred, center_crop(image, 2), atol=1e-5)


def test_linear_light_blur_of_a_constant_image_is_that_constant():
    image = torch.full((1, 3, 30, 30), 0.37)
    kernel = random_motion_kernel(9, np.random.default_rng(3))
    assert torch.allclose(synthesize(image, kernel[None])[0], torch.full((1, 3, 22, 22), 0.37), atol=1e-5)


def test_blur_happens_in_linear_light_not_on_gamma_encoded_values():
    # Half black, half white, averaged by a 2-pixel box: linear light gives sRGB(0.5) = 0.735, not 0.5.
    image = torch.zeros(1, 3, 1, 2)
    image[..., 1] = 1.0
    kernel = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]])
    image = torch.nn.functional.pad(image, (1, 1, 1, 1), mode="replicate")
    middle = synthesize(image, kernel)[0][0, 0, 0, 1].item()
    assert abs(middle - 0.7354) < 1e-3


def test_embedded_validation_photos_are_never_training_photos():
    assert not set(TRAIN_PHOTOS) & set(VAL_PHOTOS)
    train, val = build_datasets(data_config(crop_size=32, val_crop_size=48, kernel_size=7, train_pairs_per_epoch=4))
    assert len(val) == 2 * 4


def test_validation_set_is_fixed_and_training_pairs_are_reproducible():
    config = data_config(crop_size=32, val_crop_size=48, kernel_size=7, train_pairs_per_epoch=4)
    train_a, val_a = build_datasets(config, seed=3)
    train_b, val_b = build_datasets(config, seed=3)
    for a, b in zip(val_a, val_b):
        assert torch.equal(a["blur"], b["blur"]) and torch.equal(a["sharp"], b["sharp"])
    assert torch.equal(train_a[2]["blur"], train_b[(0, 2)]["blur"])
    assert not torch.equal(train_a[2]["sharp"], train_b[(1, 2)]["sharp"])  # epoch 1 draws anew


def test_training_pairs_are_aligned_blurs_of_their_sharp_crop():
    train, _ = build_datasets(data_config(crop_size=32, val_crop_size=48, kernel_size=9, train_pairs_per_epoch=8))
    for index in range(8):
        pair = train[index]
        assert pair["blur"].shape == pair["sharp"].shape == (3, 32, 32)
        assert 0 <= pair["blur"].min() and pair["blur"].max() <= 1
        # Blur lowers high-frequency energy: the blurred crop has smaller gradients than the sharp one.
        def energy(image):
            return image.diff(dim=-1).abs().mean() + image.diff(dim=-2).abs().mean()
        assert energy(pair["blur"]) < energy(pair["sharp"])


def test_folder_source_holds_out_whole_images_for_validation(photo_folder):
    config = data_config(source="folder", sharp_dir=str(photo_folder), val_fraction=0.4, crop_size=24,
                        val_crop_size=24, kernel_size=5, train_pairs_per_epoch=4)
    train, val = build_datasets(config, seed=0)
    train_files = {p.name for p in train.load.files}
    assert len(train_files) == 3 and len(val) == 2 * config.val_crops_per_photo
    val_photos = [read_image(photo_folder / name) for name in sorted(p.name for p in photo_folder.iterdir())
                  if name not in train_files]
    assert len(val_photos) == 2
    # Every validation crop is cut from a held-out photo, never from a training one: its sharp side appears,
    # pixel for pixel, in one of the two held-out images (found by sliding the crop over each photo).
    def found_in(crop, photo):
        size = crop.shape[-1]
        windows = photo.unfold(1, size, 1).unfold(2, size, 1)  # 3 x H' x W' x size x size
        return bool((windows - crop[:, None, None]).abs().amax(dim=(0, 3, 4)).min() < 1e-6)

    train_photos = [read_image(photo_folder / name) for name in sorted(train_files)]
    for index in range(len(val)):
        sharp = val[index]["sharp"]
        assert any(found_in(sharp, photo) for photo in val_photos)
        assert not any(found_in(sharp, photo) for photo in train_photos)


def test_missing_empty_and_unreadable_folders_name_the_problem(tmp_path, photo_folder):
    with pytest.raises(DataError, match="does not exist"):
        build_datasets(data_config(source="folder", sharp_dir=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="contains no images"):
        build_datasets(data_config(source="folder", sharp_dir=str(tmp_path / "empty")))
    (photo_folder / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="broken.png"):
        build_datasets(data_config(source="folder", sharp_dir=str(photo_folder), crop_size=24, kernel_size=5,
                                  val_crop_size=24))


def test_images_smaller_than_the_crop_are_named(photo_folder):
    with pytest.raises(DataError, match=r"photo\d\.(png|jpg) is 80x64, smaller than the crop"):
        build_datasets(data_config(source="folder", sharp_dir=str(photo_folder), crop_size=96, val_crop_size=24,
                                  kernel_size=5))


def test_persistent_loader_workers_draw_new_pairs_every_epoch_and_resume_mid_epoch():
    """Workers hold their own dataset copy: the epoch must reach them through the sampler's keys."""
    from torch.utils.data import DataLoader

    from datasets import EpochSampler

    train, _ = build_datasets(data_config(crop_size=32, val_crop_size=48, kernel_size=7, train_pairs_per_epoch=8))
    sampler = EpochSampler(len(train))
    loader = DataLoader(train, batch_size=4, sampler=sampler, num_workers=1, persistent_workers=True)
    firsts = []
    for epoch in (0, 1):
        sampler.epoch = epoch
        firsts.append(next(iter(loader))["blur"])
        assert torch.equal(firsts[-1][0], train[(epoch, 0)]["blur"])
    assert not torch.equal(firsts[0], firsts[1])
    sampler.start = 4  # a run resumed after one batch of epoch 1 continues with its second batch
    (batch,) = list(loader)
    assert torch.equal(batch["blur"][0], train[(1, 4)]["blur"])


def test_blur_on_device_makes_the_same_pairs_as_the_workers():
    """data.blur_on_device: items carry the sharp window, kernel and noise levels; the batched blur on the
    device reproduces the workers' pairs exactly where no noise is drawn, and adds the drawn noise level."""
    base = dict(source="embedded", crop_size=24, kernel_size=9, train_pairs_per_epoch=6, val_crop_size=24)
    workers = build_datasets(data_config(**base), seed=3).train
    deferred = build_datasets(data_config(**base, blur_on_device=True), seed=3).train
    keys = [(1, i) for i in range(6)]
    batch = torch.utils.data.default_collate([deferred[key] for key in keys])
    assert set(batch) >= {"window", "kernel", "levels"} and batch["window"].shape[-1] == 24 + 8
    blurred, sharp = synthesize_batch(batch, torch.device("cpu"))
    expected = [workers[key] for key in keys]
    assert torch.equal(sharp, torch.stack([item["sharp"] for item in expected]))
    assert torch.allclose(blurred, torch.stack([item["blur"] for item in expected]), atol=1e-5)

    noisy = build_datasets(data_config(**base, blur_on_device=True, noise_sigma=0.05, noise_space="srgb"), seed=3).train
    batch = torch.utils.data.default_collate([noisy[key] for key in keys])
    torch.manual_seed(0)
    blurred_noisy, _ = synthesize_batch(batch, torch.device("cpu"))
    residual = (blurred_noisy - blurred).flatten(1).std(dim=1)  # away from clipping, std = the drawn sigma
    assert torch.allclose(residual, batch["levels"][:, 2], rtol=0.25, atol=2e-3)
    assert batch["levels"][:, 3].eq(1).all()  # every pair's noise in sRGB
    problems = data_config(source="paired", root="x", blur_on_device=True).check()
    assert any("data.blur_on_device needs a synthetic source" in problem for problem in problems)


def test_blur_on_device_draws_the_noise_space_per_pair_and_recompresses_jpeg_as_the_workers_do():
    """The long run's degradation (noise space drawn per pair, JPEG on some pairs) on the device: the JPEG pairs
    match the workers' to within JPEG's rounding, and each pair's read noise lands in the space it drew."""
    base = dict(source="embedded", crop_size=32, kernel_size=9, train_pairs_per_epoch=16, val_crop_size=32,
                jpeg_quality=[70, 95], jpeg_probability=0.5, quantize=True)
    assert data_config(**base, blur_on_device=True, noise_space="mixed").check() == []
    keys = [(1, i) for i in range(16)]
    workers = build_datasets(data_config(**base), seed=5).train
    deferred = build_datasets(data_config(**base, blur_on_device=True), seed=5).train
    batch = torch.utils.data.default_collate([deferred[key] for key in keys])
    quality = batch["levels"][:, 4]
    assert 0 < int((quality > 0).sum()) < 16 and quality[quality > 0].min() >= 70
    blurred, _ = synthesize_batch(batch, torch.device("cpu"), quantize=True)
    expected = torch.stack([workers[key]["blur"] for key in keys])
    assert (blurred - expected).abs().amax(dim=(1, 2, 3)).max() <= 2 / 255 + 1e-6
    assert torch.equal(blurred, (blurred * 255).round() / 255)

    mixed = dict(base, jpeg_quality=None, quantize=False, noise_sigma=0.05, noise_space="mixed")
    plain = build_datasets(data_config(**dict(mixed, noise_sigma=0.0), blur_on_device=True), seed=5).train
    noisy = build_datasets(data_config(**mixed, blur_on_device=True), seed=5).train
    clean, _ = synthesize_batch(torch.utils.data.default_collate([plain[key] for key in keys]), torch.device("cpu"))
    batch = torch.utils.data.default_collate([noisy[key] for key in keys])
    in_srgb = batch["levels"][:, 3] == 1
    assert 0 < int(in_srgb.sum()) < 16  # both spaces drawn
    torch.manual_seed(0)
    blurred, _ = synthesize_batch(batch, torch.device("cpu"))
    residual = (blurred - clean).flatten(1).std(dim=1)
    # The workers draw the same space and level for each pair (another noise image): residuals of the same size.
    workers = [build_datasets(data_config(**settings), seed=5).train for settings in (dict(mixed, noise_sigma=0.0),
                                                                                      mixed)]
    assert [workers[1][key]["noise_space"] for key in keys] == ["srgb" if s else "linear" for s in in_srgb]
    expected = torch.stack([(workers[1][key]["blur"] - workers[0][key]["blur"]).std() for key in keys])
    assert torch.allclose(residual, expected, rtol=0.25, atol=2e-3)
    sigma = batch["levels"][:, 2]
    assert torch.allclose(residual[in_srgb], sigma[in_srgb], rtol=0.25, atol=2e-3)  # sRGB units: sigma itself
