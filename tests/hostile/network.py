"""Reach the network (the judge's machine, the internet) and abstract UNIX sockets."""
import socket

tried = []
for family, address in ((socket.AF_INET, ("127.0.0.1", 22)), (socket.AF_INET, ("8.8.8.8", 53)),
                        (socket.AF_UNIX, "\0kata-judge")):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(address)
        tried.append(f"connected {address}")
    except OSError as e:
        tried.append(type(e).__name__)


def softmax(x, dim=-1):
    raise RuntimeError(f"network: {tried}")


def scaled_dot_product_attention(q, k, v, mask=None):
    raise RuntimeError(f"network: {tried}")
