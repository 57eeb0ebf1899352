"""The frames that cross the sandbox boundary: pickles whose tensors travel as raw bytes.

A tensor goes as (index, dtype, shape, device, requires_grad, bytes) the first time the message holds
it and as (index,) after that, so tied weights stay one tensor. torch.save and torch.load spend about
a millisecond a message on their own bookkeeping, more than most checks compute; this costs
microseconds.

  encode(message)       -> bytes, for either direction.
  decode_trusted(frame) -> what the judge sent a sandbox: any class may be rebuilt (modules, say).
  decode_plain(frame)   -> what a sandbox sent the judge. Every opcode is checked before anything
                           is built: only those of str, bytes, ints within 64 bits, floats, bools,
                           None, tuples, lists, dicts, the memo and tensor records pass (no global,
                           no call, no BUILD, no sets). While unpickling, a tensor record stands as
                           an inert placeholder, so no opcode can reach a tensor's methods; the
                           tensors are made afterwards from raw bytes whose length must match their
                           dtype and shape (a dtype of _DTYPES, on the CPU or CUDA, bools 0 or 1).
                           Anything else raises ValueError. What the values mean is
                           harness.from_plain's to check.
"""

import io
import math
import pickle
import pickletools

import torch

_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128, torch.bool,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32, torch.uint64)}
_NAMES = {d: name for name, d in _DTYPES.items()}
_PLAIN_OPS = {
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE", "BININT", "BININT1",
    "BININT2", "LONG1", "BINFLOAT", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "SHORT_BINBYTES", "BINBYTES",
    "BINBYTES8", "BYTEARRAY8", "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2",
    "TUPLE3", "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT",
    "MEMOIZE", "BINPERSID",
}
_DEVICES = ("cpu", "cuda")


class _Writer(pickle.Pickler):
    def __init__(self, file):
        super().__init__(file, protocol=5)
        self.sent = {}  # id of a tensor -> its index

    def persistent_id(self, obj):
        if type(obj) is not torch.Tensor or obj.dtype not in _NAMES or obj.layout != torch.strided or obj.is_meta:
            return None  # everything else pickles as pickle does
        index = self.sent.get(id(obj))
        if index is not None:
            return (index,)
        index = self.sent[id(obj)] = len(self.sent)
        flat = obj.detach().resolve_conj().resolve_neg().cpu().contiguous().reshape(-1).view(torch.uint8)
        data = pickle.PickleBuffer(flat.numpy())  # written once, as a bytearray
        return (index, _NAMES[obj.dtype], tuple(obj.shape), str(obj.device), obj.requires_grad, data)


def encode(message) -> bytes:
    buffer = io.BytesIO()
    _Writer(buffer).dump(message)
    return buffer.getvalue()



class _Reader(pickle.Unpickler):
    def __init__(self, frame: bytes):
        super().__init__(io.BytesIO(frame))
        self.tensors = []

    def persistent_load(self, pid):
        if type(pid) is not tuple:
            raise ValueError("a tensor's record is not a tuple")
        if len(pid) == 1 and type(pid[0]) is int and 0 <= pid[0] < len(self.tensors):
            return self.tensors[pid[0]]
        if len(pid) != 6 or pid[0] != len(self.tensors):
            raise ValueError("a tensor's record is malformed")
        self.tensors.append(self.made(pid[1:]))
        return self.tensors[-1]

    @staticmethod
    def made(record: tuple):
        return _tensor(*record)


class _Slot:
    """Where a tensor goes, while a sandbox's frame is unpickled: it has no methods to call."""

    __slots__ = ("record",)

    def __init__(self, record):
        self.record = record


class _PlainReader(_Reader):
    made = _Slot

    def find_class(self, module, name):
        raise ValueError(f"the frame names {module}.{name}")


def _tensor(dtype, shape, device, requires_grad, data) -> torch.Tensor:
    if type(dtype) is not str or dtype not in _DTYPES:
        raise ValueError(f"no such dtype {dtype!r}")
    dtype = _DTYPES[dtype]
    if type(shape) is not tuple or len(shape) > 64 or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError("a tensor's shape is not a tuple of sizes")
    if type(data) is not bytearray or len(data) != math.prod(shape) * dtype.itemsize:
        raise ValueError("a tensor's bytes do not match its shape and dtype")
    if dtype is torch.bool and data.count(0) + data.count(1) != len(data):
        raise ValueError("a bool tensor holds bytes other than 0 and 1")
    if type(device) is not str or torch.device(device).type not in _DEVICES or type(requires_grad) is not bool:
        raise ValueError("a tensor's device or requires_grad is malformed")
    t = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
    t = t.reshape(shape)
    if device != "cpu":
        t = t.to(device)
    return t.requires_grad_() if requires_grad else t


def decode_trusted(frame: bytes):
    return _Reader(frame).load()


def decode_plain(frame: bytes):
    try:
        for op, arg, _ in pickletools.genops(frame):
            if op.name not in _PLAIN_OPS:
                raise ValueError(f"opcode {op.name}")
            if op.name == "LONG1" and not -2**63 <= arg < 2**63:
                raise ValueError("an int beyond 64 bits")
        reader = _PlainReader(frame)
        return _filled(reader.load(), {id(s): _tensor(*s.record) for s in reader.tensors}, {})
    except Exception as e:  # whatever the frame holds, one kind of error
        raise ValueError(f"not a frame of plain data ({type(e).__name__}: {e})") from None


def _filled(x, tensors: dict, done: dict):
    """x with its placeholders replaced by their tensors; a value reached twice is made once."""
    kind = type(x)
    if kind is _Slot:
        return tensors[id(x)]
    if kind not in (list, tuple, dict):
        return x
    if id(x) in done:
        return done[id(x)]
    if kind is tuple:
        done[id(x)] = out = tuple(_filled(v, tensors, done) for v in x)
        return out
    done[id(x)] = out = kind()
    if kind is list:
        out.extend(_filled(v, tensors, done) for v in x)
        return out
    for k, v in x.items():
        if type(k) not in (str, int):
            raise ValueError(f"a dict key of type {type(k).__name__}")
        out[k] = _filled(v, tensors, done)
    return out
