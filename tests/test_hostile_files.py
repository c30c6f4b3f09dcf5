"""Hostile files: headers that declare huge images, names OpenCV cannot take, outputs that would replace inputs.

Every case runs on real files; a refused case leaves every file it was given byte for byte as it was.
"""

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.errors import DataError
from core.image_io import read_image_for_inference
from core.images import exif_orientation, image_size, orient_array
from helpers import ROOT, one_error_line, run_cli, save_photo, smooth_photo


def png_header_only(path: Path, width: int, height: int, bit_depth: int = 8) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` RGB pixels and whose data is a few bytes: the
    decompression bomb's shape (a decoder that trusts the header allocates every declared pixel)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


# -- decompression bombs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bit_depth, side", [(8, 100_000), (16, 14_200)])
def test_a_png_that_declares_too_many_pixels_is_refused_from_its_header(tmp_path, bit_depth, side):
    bomb = png_header_only(tmp_path / "bomb.png", side, side, bit_depth)
    assert bomb.stat().st_size < 100
    for read in (image_size, exif_orientation, read_image_for_inference):
        with pytest.raises(DataError, match=f"declares {side}x{side}"):
            read(bomb)


@pytest.mark.subprocess
def test_infer_refuses_a_bomb_in_one_line(tmp_path, checkpoint):
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000, 16)
    result = run_cli("-m", "infer", "--input", str(bomb), "--output", str(tmp_path / "out.png"),
                     "--checkpoint", str(checkpoint), cwd=tmp_path)
    assert "declares 100000x100000" in one_error_line(result)
    assert not (tmp_path / "out.png").exists()


def test_the_demo_refuses_a_bomb_before_it_becomes_a_job(tmp_path):
    from restore.demo import DemoApp, Model, download_name

    def never_loaded():
        raise AssertionError("a refused upload must not load a model")

    app = DemoApp([Model("m", "model", never_loaded)], max_megapixels=1)
    try:
        body = png_header_only(tmp_path / "bomb.png", 100_000, 100_000).read_bytes()
        with pytest.raises(DataError, match="declares 100000x100000"):
            app.submit("m", "bomb.png", body)
        big = tmp_path / "big.png"
        Image.fromarray(np.zeros((1100, 1000, 3), np.uint8)).save(big)
        with pytest.raises(DataError, match="1.1 MP, over this demo's limit of 1 MP"):
            app.submit("m", "big.png", big.read_bytes())
        assert app.jobs == {} and list(app.folder.iterdir()) == []
    finally:
        app.close()
    # The download name a client chose never carries a header break or a quote into the response.
    assert download_name('a"\r\nSet-Cookie: x=1.png') == "a___Set-Cookie_ x_1_deblurred.png"


# -- OpenCV's reader ---------------------------------------------------------------------------------------------


def test_a_sixteen_bit_photo_whose_name_is_not_utf8_is_read(tmp_path):
    pixels = (np.random.default_rng(0).random((20, 30, 3)) * 65535).astype(np.uint16)
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    path = tmp_path / name
    assert cv2.imencode(".png", pixels)[0]
    path.write_bytes(cv2.imencode(".png", pixels)[1].tobytes())
    image, info = read_image_for_inference(path)
    assert info.bits == 16
    np.testing.assert_allclose(image.numpy().transpose(1, 2, 0), pixels[..., ::-1] / 65535.0, atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_array_turns_as_pillow_does(orientation):
    from PIL import ImageOps

    pixels = smooth_photo(np.random.default_rng(orientation), 6, 9)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(orient_array(pixels, orientation), expected)


def test_a_sixteen_bit_png_with_exif_orientation_is_turned_upright_like_an_eight_bit_one(tmp_path):
    pixels8 = smooth_photo(np.random.default_rng(1), 20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the upright image is 30 x 20
    eight = tmp_path / "eight.png"
    Image.fromarray(pixels8).save(eight, exif=exif.tobytes())
    sixteen = tmp_path / "sixteen.png"
    # OpenCV writes the 16-bit pixels; the eXIf chunk is spliced in before IEND, where cameras' tools put it.
    data = cv2.imencode(".png", pixels8[..., ::-1].astype(np.uint16) * 257)[1].tobytes()
    body = exif.tobytes()
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    sixteen.write_bytes(data[:-12] + chunk + data[-12:])
    assert exif_orientation(sixteen) == 6 and image_size(sixteen) == (20, 30)
    upright8, _ = read_image_for_inference(eight)
    upright16, info = read_image_for_inference(sixteen)
    assert info.bits == 16 and upright16.shape == upright8.shape == (3, 30, 20)
    np.testing.assert_allclose(upright16.numpy(), upright8.numpy(), atol=1e-6)


# -- outputs never replace inputs --------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_sharp_files_are_inputs_and_never_overwritten(tmp_path, checkpoint):
    blur, sharp = tmp_path / "blur", tmp_path / "sharp"
    save_photo(blur / "a.png", seed=0)
    truth = save_photo(sharp / "a.png", seed=1)
    before = truth.read_bytes()
    args = ["-m", "infer", "--input", str(blur), "--output", str(sharp), "--checkpoint", str(checkpoint),
            "--compare", "--sharp", str(sharp), "--overwrite"]
    assert "--sharp folder" in one_error_line(run_cli(*args, cwd=tmp_path))
    assert truth.read_bytes() == before and sorted(p.name for p in sharp.iterdir()) == ["a.png"]
    # A single file written onto a sharp counterpart through a link is refused too.
    (tmp_path / "alias.png").symlink_to(truth)
    args = ["-m", "infer", "--input", str(blur / "a.png"), "--output", str(tmp_path / "alias.png"),
            "--checkpoint", str(checkpoint), "--compare", "--sharp", str(sharp), "--overwrite"]
    assert "is the input file" in one_error_line(run_cli(*args, cwd=tmp_path))
    assert truth.read_bytes() == before


@pytest.mark.subprocess
def test_an_onnx_export_never_replaces_the_checkpoint_or_unasked_files(tmp_path, checkpoint):
    own = tmp_path / "model.pt"
    own.write_bytes(checkpoint.read_bytes())
    before = own.read_bytes()
    # The checkpoint named as the export: refused with --overwrite too.
    for extra in ([], ["--overwrite"]):
        result = run_cli("-m", "infer", "--checkpoint", str(own), "--export-onnx", str(own), *extra, cwd=tmp_path)
        assert "would replace the checkpoint" in one_error_line(result) or "exists" in one_error_line(result)
    assert own.read_bytes() == before
    # The external-data file of an earlier export counts as an existing output.
    data = tmp_path / "x.onnx.data"
    data.write_bytes(b"someone's file")
    result = run_cli("-m", "infer", "--checkpoint", str(own), "--export-onnx", str(tmp_path / "x.onnx"),
                     cwd=tmp_path)
    assert "x.onnx.data exists" in one_error_line(result)
    assert data.read_bytes() == b"someone's file" and not (tmp_path / "x.onnx").exists()


# -- inputs that are not what they seem ---------------------------------------------------------------------------


@pytest.mark.subprocess
def test_a_checkpoint_folder_and_a_pipe_input_are_named_for_what_they_are(tmp_path, checkpoint):
    photo = save_photo(tmp_path / "a.png")
    result = run_cli("-m", "infer", "--input", str(photo), "--output", str(tmp_path / "o.png"), "--checkpoint",
                     str(tmp_path), cwd=tmp_path)
    assert f"checkpoint {tmp_path} is a folder" in one_error_line(result)
    os.mkfifo(tmp_path / "pipe.png")
    result = run_cli("-m", "infer", "--input", str(tmp_path / "pipe.png"), "--output", str(tmp_path / "o.png"),
                     "--checkpoint", str(checkpoint), cwd=tmp_path)
    assert "is neither an image file nor a folder" in one_error_line(result)


@pytest.mark.subprocess
def test_two_inputs_that_would_write_one_output_are_refused(tmp_path, checkpoint):
    save_photo(tmp_path / "in" / "a.png")
    save_photo(tmp_path / "in" / "a_compare.png", seed=1)  # its output is a.png's panel
    result = run_cli("-m", "infer", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                     "--checkpoint", str(checkpoint), "--compare", cwd=tmp_path)
    assert "would both be written to" in one_error_line(result) and not (tmp_path / "out").exists()


@pytest.mark.subprocess
def test_restored_and_sharp_the_same_folder_is_refused(tmp_path):
    save_photo(tmp_path / "s" / "a.png")
    result = run_cli(str(ROOT / "evaluate.py"), "--restored", str(tmp_path / "s"), "--sharp", str(tmp_path / "s"),
                     cwd=tmp_path)
    assert result.returncode == 2 and "are the same folder" in result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("flag, value", [("--max-megapixels", "nan"), ("--max-upload-mb", "inf")])
def test_demo_limits_must_be_finite(tmp_path, flag, value):
    result = run_cli(str(ROOT / "demo.py"), flag, value, cwd=tmp_path)
    assert result.returncode == 2 and "must be positive finite numbers" in result.stderr


@pytest.mark.subprocess
def test_ctrl_c_in_a_folder_run_says_what_was_done_and_exits_130(tmp_path, checkpoint):
    for index in range(60):
        save_photo(tmp_path / "in" / f"p{index:02d}.png", seed=index, size=(96, 128))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "infer", "--input", str(tmp_path / "in"), "--output", str(out), "--checkpoint",
         str(checkpoint)], cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    def finished_outputs():  # not the hidden partial file of an image being written
        return [path for path in out.iterdir() if not path.name.startswith(".")] if out.is_dir() else []

    while not finished_outputs() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and "of 60 images" in lines[0], stderr
    written = sorted(out.iterdir())  # no partial file is left behind either
    assert 0 < len(written) < 60 and all(Image.open(path).size == (128, 96) for path in written)  # each one whole


@pytest.mark.subprocess
@pytest.mark.parametrize("tool", ["infer", "export", "evaluate", "benchmark"])
def test_an_output_under_a_file_is_one_line_and_leaves_no_partial_folder(tmp_path, checkpoint, tool):
    (tmp_path / "afile").write_text("mine\n")
    photo = save_photo(tmp_path / "in" / "a.png", size=(64, 64))
    save_photo(tmp_path / "sharp" / "a.png", seed=1, size=(64, 64))
    args = {
        "infer": ["-m", "infer", "--input", str(photo), "--output", str(tmp_path / "afile" / "o.png"),
                  "--checkpoint", str(checkpoint)],
        "export": ["-m", "infer", "--checkpoint", str(checkpoint), "--export-onnx", str(tmp_path / "afile" / "x.onnx")],
        "evaluate": [str(ROOT / "evaluate.py"), "--restored", str(tmp_path / "in"), "--sharp", str(tmp_path / "sharp"),
                     "--out", str(tmp_path / "afile" / "ev"), "--metrics", "psnr", "ssim", "--no-lpips"],
        "benchmark": ["-m", "datasets.benchmark", "--out", str(tmp_path / "afile" / "b"), "--photos",
                      str(tmp_path / "in"), "--tile", "32", "--min-texture", "0"],
    }[tool]
    assert "a file stands where a folder is needed" in one_error_line(run_cli(*args, cwd=tmp_path))
    assert (tmp_path / "afile").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in", "sharp"]


# -- what reading changes is said, never silent -------------------------------------------------------------------


@pytest.mark.subprocess
def test_frames_beyond_the_first_and_clipped_values_are_noted(tmp_path, checkpoint):
    frames = [Image.fromarray(smooth_photo(np.random.default_rng(k), 48, 64)) for k in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])  # an APNG of 3 frames
    floats = np.random.default_rng(0).uniform(0, 255, (48, 64)).astype(np.float32)
    Image.fromarray(floats, mode="F").save(tmp_path / "float.tif")  # 0..255 values in a float TIFF
    for name, note in (("anim.png", "anim.png holds 3 frames or pages; only the first is restored"),
                       ("float.tif", "float.tif: floating-point pixels span")):
        result = run_cli("-m", "infer", "--input", str(tmp_path / name), "--output", str(tmp_path / f"out-{name}"),
                         "--checkpoint", str(checkpoint), cwd=tmp_path)
        assert result.returncode == 0 and f"note: {note}" in result.stderr, result.stderr


@pytest.mark.subprocess
def test_files_a_folder_run_cannot_read_are_counted(tmp_path, checkpoint):
    save_photo(tmp_path / "in" / "a.png")
    Image.fromarray(smooth_photo(np.random.default_rng(1), 48, 64)).save(tmp_path / "in" / "b.gif")
    (tmp_path / "in" / "notes.txt").write_text("mine")
    result = run_cli("-m", "infer", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                     "--checkpoint", str(checkpoint), cwd=tmp_path)
    assert result.returncode == 0 and "1 restored" in result.stdout
    assert "2 file(s) in" in result.stderr and "left alone: b.gif, notes.txt" in result.stderr


@pytest.mark.subprocess
def test_a_tile_too_small_to_be_useful_is_noted(tmp_path, checkpoint):
    photo = save_photo(tmp_path / "a.png", size=(64, 64))
    result = run_cli("-m", "infer", "--input", str(photo), "--output", str(tmp_path / "b.png"), "--checkpoint",
                     str(checkpoint), "--tile", "3", "--overlap", "0", cwd=tmp_path)
    assert result.returncode == 0 and "note: --tile 3 runs 32 px tiles; under 128 px" in result.stderr


@pytest.mark.subprocess
def test_a_sixteen_bit_tiff_read_at_eight_bits_says_so(tmp_path, checkpoint):
    import tifffile

    pixels = (np.random.default_rng(0).random((40, 48, 3)) * 65535).astype(np.uint16)
    # LZMA: a compression OpenCV's TIFF reader lacks, so Pillow (8 bits per channel) reads it instead.
    tifffile.imwrite(tmp_path / "deep.tif", pixels, photometric="rgb", compression="lzma")
    result = run_cli("-m", "infer", "--input", str(tmp_path / "deep.tif"), "--output", str(tmp_path / "out.tif"),
                     "--checkpoint", str(checkpoint), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: deep.tif: its 16-bit samples could not be decoded at full depth" in result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("case, message", [
    ("model-string", "does not name its network"),
    ("model-list", "does not name its network"),
    ("model-without-name", "does not name its network"),
    ("generator-list", "holds no generator weights"),
    ("nan-weights", "is not finite (inf or nan)"),
])
def test_a_malformed_checkpoint_is_one_line_wherever_it_is_loaded(tmp_path, checkpoint, case, message):
    import torch

    from core.checkpoint import save_checkpoint

    state = torch.load(checkpoint, weights_only=True)
    if case == "model-string":
        state["model"] = "light_unet"
    elif case == "model-list":
        state["model"] = ["light_unet"]
    elif case == "model-without-name":
        state["model"] = {"start_filters": 4}
    elif case == "generator-list":
        state["generator"] = [1, 2, 3]
        state.pop("generator_ema", None)
    else:
        next(iter(state["generator"].values())).fill_(float("nan"))
        state.pop("generator_ema", None)
    bad = tmp_path / "bad.pt"
    save_checkpoint(state, bad)
    photo = save_photo(tmp_path / "in" / "a.png")
    infer = run_cli("-m", "infer", "--input", str(photo), "--output", str(tmp_path / "o.png"), "--checkpoint",
                    str(bad), cwd=tmp_path)
    assert message in one_error_line(infer) and not (tmp_path / "o.png").exists()
    train = run_cli("-m", "train_gan", "--pretrain", "--set", "model.start_filters=4", "data.crop_size=32",
                    "data.kernel_size=7", f"train.init={bad}", cwd=tmp_path)
    assert message in one_error_line(train)


@pytest.mark.subprocess
@pytest.mark.parametrize("tool", ["evaluate", "demo"])
def test_an_unknown_device_is_one_line_in_every_tool(tmp_path, tool, bench_folder):
    args = {"evaluate": [str(ROOT / "evaluate.py"), "--benchmark", str(bench_folder), "--methods", "model",
                         "--device", "potato", "--out", str(tmp_path / "e"), "--no-lpips", "--metrics", "psnr"],
            "demo": [str(ROOT / "demo.py"), "--device", "potato", "--port", "0"]}[tool]
    result = run_cli(*args, cwd=tmp_path)
    assert "device 'potato' is not one torch knows" in one_error_line(result)


@pytest.mark.subprocess
def test_ctrl_c_during_training_set_up_is_one_line(tmp_path):
    # A thousand validation crops per photo take seconds to make: the signal arrives during set-up.
    process = subprocess.Popen(
        [sys.executable, "-m", "train_gan", "--pretrain", "--set", "data.val_crops_per_photo=1000"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.strip().splitlines() == [
        "interrupted during set-up; no checkpoint was written"], stderr
    assert not (tmp_path / "experiments").exists()


def test_an_upload_cut_short_never_becomes_a_job(tmp_path):
    import socket
    import threading

    from restore.demo import DemoApp, Model, make_server

    app = DemoApp([Model("m", "model", lambda: (lambda image, progress: image))])
    server = make_server(app, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = save_photo(tmp_path / "a.png").read_bytes()
        with socket.create_connection(server.server_address[:2]) as connection:
            connection.sendall(b"POST /api/restore?model=m&name=a.png HTTP/1.1\r\nHost: x\r\n"
                               + f"Content-Length: {len(body) + 5000}\r\n\r\n".encode() + body)
            connection.shutdown(socket.SHUT_WR)  # the client goes away before the rest of its body
            assert connection.recv(100) == b""  # no reply: nothing was accepted
        assert app.jobs == {} and list(app.folder.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()
        app.close()
