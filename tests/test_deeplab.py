"""DeepLab v3+ (Seg2Eye's segmenter and refiner backbone): shapes, training, bad input, checkpoints."""
import pytest
import torch

from eyegen_lib import CheckpointError, load_checkpoint, save_checkpoint
from eyegen_lib.models.deeplab import (DeepLabConfig, DeepLabV3Plus, SegmenterConfig, segment, segmentation_loss,
                                       train_segmenter)
from eyegen_lib.profiles import get_profile


def tiny_config(**kw):
    base = dict(block="basic", layers=(1, 1, 1, 1), widths=(8, 8, 16, 16), stem=8, atrous_rates=(1, 2, 3),
                aspp_channels=16, low_level_channels=8, decoder_channels=16, input_size=(24, 40))
    return DeepLabConfig(**{**base, **kw})


@pytest.mark.parametrize("size", [(24, 40), (17, 33), (40, 64), (9, 9)])
def test_output_has_the_input_size(size):
    model = DeepLabV3Plus(tiny_config()).eval()
    assert model(torch.randn(2, 1, *size)).shape == (2, 4, *size)  # grey repeated to 3 channels
    assert model(torch.randn(2, 3, *size)).shape == (2, 4, *size)


def test_output_stride_and_bottleneck_paper_layout():
    c = DeepLabConfig.for_profile(get_profile("paper"))
    assert (c.block, tuple(c.layers), c.output_stride, tuple(c.atrous_rates), c.out_channels) == \
        ("bottleneck", (3, 4, 23, 3), 16, (6, 12, 18), 4)
    small = DeepLabV3Plus(tiny_config(block="bottleneck", output_stride=8)).eval()
    low, high = small.encoder(torch.randn(1, 3, 64, 64))
    assert low.shape[-1] == 16 and high.shape[-1] == 8  # stride 4 and output stride 8 (dilated, not strided)
    assert DeepLabV3Plus(tiny_config())(torch.randn(1, 1, 64, 64)).shape == (1, 4, 64, 64)


@pytest.mark.numerics
def test_a_few_steps_lower_the_loss(numerics_seed, margin):
    torch.manual_seed(numerics_seed)
    model = DeepLabV3Plus(tiny_config())
    x = torch.randn(4, 1, 24, 40)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 0] > 1).long()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    # 15 steps ended at 0.78-0.86 of the first loss over seeds (against a threshold of 0.8);
    # after 60 every seed measured is at or below 0.76 (benchmarks/numerics_spread.py)
    for _ in range(60):
        loss = segmentation_loss(model(x), y)
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    margin.below("loss last / first", losses[-1] / losses[0], 0.9)


def test_labels_outside_0_3_are_refused():
    logits = torch.randn(1, 4, 5, 5)
    with pytest.raises(ValueError, match="0..3"):
        segmentation_loss(logits, torch.full((1, 5, 5), 4))
    with pytest.raises(ValueError, match="0..3"):
        segmentation_loss(logits, torch.full((1, 5, 5), -1))
    with pytest.raises(TypeError, match="integers"):
        segmentation_loss(logits, torch.zeros(1, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        DeepLabV3Plus(tiny_config())(torch.randn(1, 2, 8, 8))


def test_trained_segmenter_saves_loads_and_segments_any_size(tmp_path):
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(8, 24, 40, dtype=torch.long)
    for i in range(8):  # a disc of "iris" with a "pupil" inside, at random places
        cy, cx = torch.randint(8, 16, (1,), generator=g).item(), torch.randint(10, 30, (1,), generator=g).item()
        yy, xx = torch.meshgrid(torch.arange(24), torch.arange(40), indexing="ij")
        r = ((yy - cy) ** 2 + (xx - cx) ** 2).float().sqrt()
        masks[i][r < 7] = 2
        masks[i][r < 3] = 3
    images = torch.tensor([200, 150, 90, 20], dtype=torch.uint8)[masks][:, None]
    config = SegmenterConfig(net=tiny_config(), steps=25, batch_size=4, lr=5e-3)
    model, history = train_segmenter(images, masks, config, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    path = save_checkpoint(tmp_path / "seg.pt", kind="deeplab_segmenter", model=model, config=config)
    again = DeepLabV3Plus(config.net)
    load_checkpoint(path, kind="deeplab_segmenter", model=again, config=config)
    out = segment(again, images)
    assert out.shape == (8, 24, 40) and out.dtype == torch.int64
    assert torch.equal(out, segment(model, images))
    big = torch.nn.functional.interpolate(images.float(), size=(50, 77)) / 127.5 - 1
    assert segment(again, big).shape == (8, 50, 77)
    with pytest.raises(CheckpointError, match="not a 'refiner'"):
        load_checkpoint(path, kind="refiner", model=again)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, kind="deeplab_segmenter", model=DeepLabV3Plus(tiny_config(stem=16)))
