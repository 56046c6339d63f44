import pytest
import torch
from torch import nn

from transferlab.errors import ConfigError, ShapeError
from transferlab.models import HeadSpec, TransferModel, create_backbone, list_backbones, wrap_module


def make_backbone(name: str, scratch):
    """Every registered backbone at the tiny size its registry entry gives, for the first kind of input it takes."""
    from transferlab.data.task import InputSpec
    from transferlab.models import backbone_entry

    entry = backbone_entry(name)
    spec = InputSpec("text", ()) if entry.inputs[0] == "text" else InputSpec(entry.inputs[0], (1, 16, 16))
    return create_backbone(name, spec, **entry.tiny_options(scratch))


def example_batch(backbone):
    import numpy as np

    if backbone.input_spec.kind == "text":
        return backbone.prepare_inputs(np.array(["one short text", "and a second, longer text here", "x", "y"], dtype=object))
    return torch.rand(4, 1, 16, 16)


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_has_the_transfer_interface(name, tmp_path_factory):
    backbone = make_backbone(name, tmp_path_factory.getbasetemp())
    x = example_batch(backbone)
    feats = backbone.features(x)
    assert feats.shape == (4, backbone.feature_dim)
    assert backbone.block_names and len(backbone.block_names) == len(set(backbone.block_names))
    # Every state tensor belongs to exactly one block, in order, with its saved name.
    listed = [p for block in backbone.block_param_names() for p in block["params"]]
    assert sorted(listed) == sorted(f"backbone.{k}" for k in backbone.state_dict())
    assert backbone.spec["name"] == name


def test_seed_network_is_mlp_with_one_hidden_layer():
    backbone = create_backbone("mlp", (1, 28, 28), hidden=[128], activation="relu", dropout=0.2)
    model = TransferModel(backbone, HeadSpec(num_outputs=10))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 784 * 128 + 128 + 128 * 10 + 10  # the seed's Keras model.summary()
    assert backbone.block_names == ["fc1"]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_mlp_activations(activation):
    backbone = create_backbone("mlp", (5,), hidden=[7, 3], activation=activation, dropout=0.0)
    assert backbone.features(torch.rand(2, 5)).shape == (2, 3)


def test_unknown_backbone_and_option_are_refused():
    with pytest.raises(ConfigError, match=r"unknown backbone 'resnet'; registered backbones are \['cnn', 'efficientnet-lite0', 'hf', 'hf-vision', 'minilm', 'mlp'\]"):
        create_backbone("resnet", (1, 8, 8))
    with pytest.raises(ConfigError, match=r"backbone 'mlp' has no option\(s\) \['channels'\]; its options are"):
        create_backbone("mlp", (1, 8, 8), channels=[4])
    with pytest.raises(ConfigError, match="mlp activation 'swish' is not one of"):
        create_backbone("mlp", (4,), activation="swish")
    with pytest.raises(ConfigError, match=r"mlp dropout must be in \[0, 1\); got 1.5"):
        create_backbone("mlp", (4,), dropout=1.5)


def test_cnn_needs_images_large_enough():
    with pytest.raises(ConfigError, match="cnn needs image inputs .* use --backbone mlp"):
        create_backbone("cnn", (64,))
    with pytest.raises(ConfigError, match="needs images of at least 4 px a side; got 2×2; pass --image-size 4"):
        create_backbone("cnn", (1, 2, 2))


def test_input_shape_mismatch_names_both_shapes():
    backbone = create_backbone("cnn", (1, 28, 28))
    with pytest.raises(ShapeError, match=r"shape 1×8×8 but this backbone expects 1×28×28 images.*--image-size"):
        backbone.check_input(torch.zeros(2, 1, 8, 8))


def test_reset_parameters_reinitialises_every_layer():
    backbone = create_backbone("cnn", (1, 8, 8))
    before = {k: v.clone() for k, v in backbone.state_dict().items() if v.is_floating_point()}
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(1.0)
    backbone.reset_parameters()
    after = backbone.state_dict()
    conv = "blocks.conv1.0.weight"
    assert not torch.equal(before[conv] + 1.0, after[conv])


def test_wrap_user_module_groups_parameter_free_layers():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.Tanh())
    backbone = wrap_module(net, input_shape=(1, 8, 8))
    assert backbone.block_names == ["1", "4"]
    assert backbone.feature_dim == 16
    assert backbone.spec is None
    assert backbone.features(torch.rand(3, 1, 8, 8)).shape == (3, 16)


def test_wrap_refuses_modules_it_cannot_run_in_order():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

    with pytest.raises(ConfigError, match="cannot wrap Custom: .* pass nn.Sequential"):
        wrap_module(Custom(), input_shape=(4,))
    with pytest.raises(ConfigError, match="without parameters"):
        wrap_module(nn.Sequential(nn.ReLU()), input_shape=(4,))
    with pytest.raises(ShapeError, match="does not accept inputs of shape 5 vector"):
        wrap_module(nn.Sequential(nn.Linear(4, 2)), input_shape=(5,))


def test_head_with_hidden_layers():
    backbone = create_backbone("mlp", (6,), hidden=[5], dropout=0.0)
    model = TransferModel(backbone, HeadSpec(num_outputs=3, hidden=[8, 4]))
    assert model(torch.rand(2, 6)).shape == (2, 3)
    assert [n for n, _ in model.head.named_children()] == ["hidden1", "hidden2", "out"]


def test_vector_input_mismatch_names_feature_counts():
    backbone = create_backbone("mlp", (4,), hidden=[8])
    with pytest.raises(ShapeError, match="has 5 features per example but this backbone expects 4; for a CSV, pass --label-column"):
        backbone.check_input(torch.zeros(2, 5), what="new.csv")


def test_mlp_and_heads_start_like_keras_dense_layers():
    torch.manual_seed(0)
    backbone = create_backbone("mlp", (784,), hidden=[128])
    layer = backbone.blocks["fc1"][1]
    bound = (6 / (784 + 128)) ** 0.5  # Glorot-uniform
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    assert torch.count_nonzero(layer.bias) == 0
    backbone.reset_parameters()  # scratch re-initialises with the same scheme
    assert torch.count_nonzero(backbone.blocks["fc1"][1].bias) == 0
    head = TransferModel(backbone, HeadSpec(num_outputs=10)).head
    assert torch.count_nonzero(head.out.bias) == 0
