"""Wire format between the parameter server and its workers (all through one c10d TCPStore).

Why a TCPStore and not gloo/nccl collectives: a collective needs every rank, so it cannot take
"the first N of N+b", and one dead peer poisons the whole communicator. The store's FIFO queue
gives exact arrival order for free, a dead worker simply stops writing, and the bytes are the
same whether the model lives on CPU or GPU.

Every key of a training job is prefixed by its job name, so nothing a previous job left behind
(a late gradient, a wake notice) can reach the next one. See the key functions below.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import torch

RUN, PAUSE, STOP = 0, 1, 2

KIND_READY, KIND_GRAD, KIND_SENTINEL = 1, 2, 3

# kind, rank, iteration, step tag (parameter version the gradient was computed at), loss, seconds
_MESSAGE_HEADER = struct.Struct("<Biqqdd")
# version, state
_PARAMS_HEADER = struct.Struct("<qB")


def grad_queue(job: str) -> str:
    """The FIFO every worker of a job pushes READY and GRAD messages to (arrival order)."""
    return f"{job}/grads"


def params_key(job: str) -> str:
    """The latest flat parameter vector with its version (step number) and run state."""
    return f"{job}/params"


def version_key(job: str) -> str:
    """A small "<version> <state>" string: workers poll it instead of the full vector."""
    return f"{job}/version"


def wake_key(job: str, rank: int) -> str:
    """The queue a worker blocks on while it waits for new parameters (one notice per publication)."""
    return f"{job}/wake/{rank}"


def job_queue(rank: int) -> str:
    """Where an idle pool worker waits for its next pickled job (empty bytes: shut down)."""
    return f"sync_sgd/jobs/{rank}"


@dataclass
class Message:
    """One message from a worker; ``step`` is the tag that keeps late gradients out."""

    kind: int
    rank: int
    iteration: int = 0
    step: int = -1
    loss: float = float("nan")
    seconds: float = 0.0
    grad: torch.Tensor | None = None


def tensor_to_bytes(flat: torch.Tensor) -> bytes:
    """Raw bytes of a flat tensor of any dtype (bfloat16 included, hence the uint8 view)."""
    return flat.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes()


def bytes_to_tensor(raw: bytes, dtype: torch.dtype) -> torch.Tensor:
    """Inverse of :func:`tensor_to_bytes` (a fresh, writable copy)."""
    if not raw:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype)


def encode_message(message: Message) -> bytes:
    header = _MESSAGE_HEADER.pack(message.kind, message.rank, message.iteration, message.step,
                                  message.loss, message.seconds)
    payload = tensor_to_bytes(message.grad) if message.grad is not None else b""
    return header + payload


def decode_message(raw: bytes, dtype: torch.dtype) -> Message:
    if len(raw) < _MESSAGE_HEADER.size:
        raise ValueError(f"sync_sgd: truncated message of {len(raw)} bytes")
    kind, rank, iteration, step, loss, seconds = _MESSAGE_HEADER.unpack_from(raw)
    payload = raw[_MESSAGE_HEADER.size:]
    grad = bytes_to_tensor(payload, dtype) if kind == KIND_GRAD else None
    return Message(kind, rank, iteration, step, loss, seconds, grad)


def encode_params(version: int, state: int, flat: torch.Tensor) -> bytes:
    return _PARAMS_HEADER.pack(version, state) + tensor_to_bytes(flat)


def decode_params(raw: bytes, dtype: torch.dtype) -> tuple[int, int, torch.Tensor]:
    version, state = _PARAMS_HEADER.unpack_from(raw)
    return version, state, bytes_to_tensor(raw[_PARAMS_HEADER.size:], dtype)


def encode_version(version: int, state: int) -> bytes:
    return f"{version} {state}".encode()


def decode_version(raw: bytes) -> tuple[int, int]:
    version, state = raw.decode().split()
    return int(version), int(state)


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters that are synchronised (those with requires_grad), in a fixed order."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("sync_sgd: the model has no trainable parameters")
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"sync_sgd: all trainable parameters must share one dtype, got {sorted(map(str, dtypes))}")
    return params


def flatten(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to("cpu") for t in tensors])


def flat_grads(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """Flat gradient vector; a parameter the loss did not touch contributes zeros."""
    return flatten([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])


def load_flat_(targets: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy a flat vector into a list of tensors in place (checks the length first)."""
    total = sum(t.numel() for t in targets)
    if flat.numel() != total:
        raise ValueError(f"sync_sgd: flat vector has {flat.numel()} values, the model needs {total}")
    offset = 0
    with torch.no_grad():
        for t in targets:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n
