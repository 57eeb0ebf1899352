"""The frames that cross the sandbox boundary: pickles whose tensors travel as raw bytes.

A tensor goes as (index, dtype, shape, device, requires_grad, bytes) the first time the message holds
it and as (index,) after that, so tied weights stay one tensor. torch.save and torch.load spend about
a millisecond a message on their own bookkeeping, more than most checks compute; this costs
microseconds.

  encode(message)       -> bytes, for either direction.
  decode_trusted(frame) -> what the judge sent a sandbox: any class may be rebuilt (modules, say).
  decode_plain(frame)   -> what a sandbox sent the judge. Its unpickler refuses every global, so a
                           frame can name no function or class, let alone call one: it builds only
                           str, bytes, numbers, bools, None, tuples, lists, dicts and sets, and
                           tensors made here from raw bytes whose length must match their dtype
                           and shape (a dtype of torch's, on the CPU or CUDA). Anything else in the
                           frame raises ValueError. What the values mean is harness.from_plain's
                           to check.
"""

import io
import math
import pickle

import torch

_DTYPES = {str(d).removeprefix("torch."): d for d in vars(torch).values() if isinstance(d, torch.dtype)}
_DEVICES = ("cpu", "cuda")


class _Writer(pickle.Pickler):
    def __init__(self, file):
        super().__init__(file, protocol=5)
        self.sent = {}  # id of a tensor -> its index

    def persistent_id(self, obj):
        if type(obj) is not torch.Tensor or obj.layout != torch.strided or obj.is_quantized or obj.is_meta:
            return None  # everything else pickles as pickle does
        index = self.sent.get(id(obj))
        if index is not None:
            return (index,)
        index = self.sent[id(obj)] = len(self.sent)
        flat = obj.detach().resolve_conj().resolve_neg().cpu().contiguous().reshape(-1).view(torch.uint8)
        data = pickle.PickleBuffer(flat.numpy())  # written once, as a bytearray
        return (index, str(obj.dtype).removeprefix("torch."), tuple(obj.shape), str(obj.device), obj.requires_grad, data)


def encode(message) -> bytes:
    buffer = io.BytesIO()
    writer = _Writer(buffer)
    writer.dump(message)
    del writer.sent
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
        self.tensors.append(_tensor(*pid[1:]))
        return self.tensors[-1]


class _PlainReader(_Reader):
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
        return _PlainReader(frame).load()
    except Exception as e:  # whatever the frame holds, one kind of error
        raise ValueError(f"not a frame of plain data ({type(e).__name__}: {e})") from None
