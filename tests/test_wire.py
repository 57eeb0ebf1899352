"""The frames between judge and sandbox: tensors arrive as they left, and a sandbox's frame can
build nothing but plain data."""

import pickle
import pickletools
import struct

import pytest
import torch

from graders import harness, wire


def tensors():
    x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    return {
        "float32": x, "float64": x.double(), "bfloat16": x.bfloat16(), "float16": x.half(),
        "int8": torch.tensor([-128, 0, 127], dtype=torch.int8), "int64": torch.tensor([2**40, -1]),
        "bool": torch.tensor([[True, False]]), "complex": torch.tensor([1 + 2j, -3j]),
        "conj": torch.tensor([1 + 2j, -3j]).conj(), "scalar": torch.tensor(3.5), "empty": torch.empty(0, 5),
        "transposed": x.transpose(0, 2), "sliced": x[:, 1, ::2],
    }


@pytest.mark.parametrize("decode", [wire.decode_trusted, wire.decode_plain])
def test_tensors_arrive_as_they_left(decode):
    sent = tensors()
    got = decode(wire.encode({"t": sent, "n": [1, 2.5, "s", None, True]}))
    assert got["n"] == [1, 2.5, "s", None, True]
    for name, t in sent.items():
        assert type(got["t"][name]) is torch.Tensor
        assert got["t"][name].dtype == t.dtype and got["t"][name].shape == t.shape, name
        assert torch.equal(got["t"][name], t.resolve_conj()), name


def test_a_tensor_held_twice_arrives_once_and_keeps_requires_grad():
    w = torch.randn(3, 3, requires_grad=True)
    got = wire.decode_trusted(wire.encode({"wte": w, "lm_head": w}))
    assert got["wte"] is got["lm_head"] and got["wte"].requires_grad and torch.equal(got["wte"], w)


def test_modules_cross_to_a_sandbox():
    layer = torch.nn.Linear(3, 2)
    got = wire.decode_trusted(wire.encode([layer]))[0]
    assert isinstance(got, torch.nn.Linear) and torch.equal(got.weight, layer.weight)
    assert isinstance(got.weight, torch.nn.Parameter)


class Runs:
    def __reduce__(self):
        return print, ("ran",)


@pytest.mark.parametrize("value", [Runs(), torch.nn.Linear(2, 2), torch.Size([2]), 1j, harness.Opaque()])
def test_a_sandbox_frame_naming_any_global_is_refused(value):
    frame = pickle.dumps({"value": value}, protocol=5)
    assert any(op.name in ("GLOBAL", "STACK_GLOBAL") for op, _, _ in pickletools.genops(frame))
    with pytest.raises(ValueError, match="not a frame of plain data"):
        wire.decode_plain(frame)


class Forged(pickle.Pickler):
    """Writes the tensor records a hostile sandbox might."""

    def __init__(self, file, record):
        super().__init__(file, protocol=5)
        self.record = record

    def persistent_id(self, obj):
        return self.record if obj == "tensor" else None


@pytest.mark.parametrize("record", [
    (0, "float32", (2, 2), "cpu", False, bytearray(15)),  # too few bytes
    (0, "float32", (2, -2), "cpu", False, bytearray(16)),
    (0, "float32", [2, 2], "cpu", False, bytearray(16)),
    (0, "Tensor", (2,), "cpu", False, bytearray(8)),
    (0, "float32", (2,), "disk", False, bytearray(8)),
    (0, "float32", (2,), "cpu", 1, bytearray(8)),
    (0, "float32", (2,), "cpu", False, b"\0" * 8),  # bytes, not a bytearray
    (1, "float32", (2,), "cpu", False, bytearray(8)),  # out of order
    (3,),  # a tensor never sent
    "a string",
])
def test_malformed_tensor_records_are_refused(record):
    import io

    buffer = io.BytesIO()
    Forged(buffer, record).dump({"value": "tensor"})
    with pytest.raises(ValueError):
        wire.decode_plain(buffer.getvalue())


def test_a_frame_of_shared_references_is_refused_before_it_is_walked():
    node = 0.0
    for _ in range(40):
        node = [node, node]
    value = wire.decode_plain(wire.encode(node))  # a few hundred bytes
    with pytest.raises(TypeError, match="more than"):
        harness.from_plain(value)


# Frames written opcode by opcode, as a hostile sandbox could.
P = pickle
text = lambda x: P.SHORT_BINUNICODE + bytes([len(x)]) + x.encode()  # noqa: E731
num = lambda n: P.BININT + struct.pack("<i", n)  # noqa: E731
tup = lambda *items: P.MARK + b"".join(items) + P.TUPLE  # noqa: E731
record = lambda dtype, shape, data: (tup(num(0), text(dtype), tup(*map(num, shape)), text("cpu"), P.NEWFALSE,  # noqa: E731
                                         P.BYTEARRAY8 + struct.pack("<Q", len(data)) + data) + P.BINPERSID)
frame = lambda body: P.PROTO + b"\x05" + body + P.STOP  # noqa: E731
ONE = record("float32", (1,), struct.pack("<f", 1.0))


@pytest.mark.parametrize("body", [
    record("quint8", (4,), b"\1\2\3\4"),  # a quantized tensor without its quantizer
    record("bits8", (4,), b"\1\2\3\4"),
    record("bool", (2,), b"\0\2"),
    ONE + P.MEMOIZE + tup(P.BINGET + b"\0", num(0), tup(num(1 << 20), num(1 << 20)), tup(num(0), num(0))) + P.BUILD,
    ONE + P.MEMOIZE + P.MARK + num(0) + num(5) + P.SETITEMS,  # tensor[0] = 5
    ONE + P.MARK + num(1) + P.ADDITEMS,
    P.EMPTY_SET + P.MARK + num(1) + P.ADDITEMS,
    P.LONG1 + bytes([12]) + (5 * (2**61 - 1)).to_bytes(12, "little"),  # ints that could all share one hash
    P.EMPTY_DICT + ONE + num(1) + P.SETITEM,  # a tensor as a dict key
])
def test_frames_that_would_reach_beyond_plain_data_are_refused(body):
    with pytest.raises(ValueError, match="not a frame of plain data"):
        wire.decode_plain(frame(body))


def test_a_tensor_record_stands_for_its_tensor():
    got = wire.decode_plain(frame(P.EMPTY_DICT + text("value") + P.MARK + ONE + P.MEMOIZE + P.BINGET + b"\0" + P.LIST + P.SETITEM))
    assert got["value"][0] is got["value"][1] and torch.equal(got["value"][0], torch.ones(1))


def shared(levels: int) -> list:
    node = []
    for _ in range(levels):
        node = [node, node]
    return node


@pytest.mark.parametrize("reply", [
    {"fail": shared(60)},  # 2**60 lists if it were turned into text
    {"error": {"names": ["ValueError"], "message": shared(60), "where": ""}},
    {"error": {"names": "ValueError", "message": "", "where": ""}},
    {"value": 1.0, "changed": shared(60)},
    {"value": 1.0, "output": 7},
])
def test_a_reply_whose_text_is_not_text_cannot_be_read(reply):
    assert "cannot read" in harness.Learner._decode(reply).fail
