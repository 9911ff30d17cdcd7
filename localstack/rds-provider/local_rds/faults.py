"""Faults on demand: the next N calls of an RDS operation fail and/or are delayed."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field

from localstack.aws.api import CommonServiceException


@dataclass
class Fault:
    operation: str  # an RDS operation name, or "*" for any
    count: int = 1  # calls it still applies to
    code: str | None = None  # error code; None: only latency
    status: int = 400
    message: str | None = None
    latency_ms: int = 0
    match: dict = field(default_factory=dict)  # request parameters that must be equal
    id: int = 0

    def matches(self, operation: str, request: dict) -> bool:
        if self.operation not in ("*", operation):
            return False
        return all(request.get(k) == v for k, v in self.match.items())


class FaultStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict) -> Fault:
        known = {"operation", "count", "code", "status", "message", "latency_ms", "match"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        if not isinstance(spec.get("operation"), str):
            raise ValueError("'operation' (an RDS operation name or '*') is required")
        fault = Fault(**spec)
        if fault.count < 1:
            raise ValueError("'count' must be >= 1")
        if fault.code is None and fault.latency_ms <= 0:
            raise ValueError("give 'code' (with 'status') and/or 'latency_ms'")
        if not 400 <= fault.status <= 599:
            raise ValueError("'status' must be an HTTP error status (400-599)")
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> int:
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            return n

    def take(self, operation: str, request: dict) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(operation, request):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def apply(self, operation: str, request: dict) -> None:
        """Called first for every RDS request: sleeps and/or raises as a fault says."""
        fault = self.take(operation, request)
        if fault is None:
            return
        if fault.latency_ms > 0:
            time.sleep(fault.latency_ms / 1000)
        if fault.code:
            raise CommonServiceException(
                fault.code,
                fault.message or f"Injected fault for {operation}",
                status_code=fault.status,
                sender_fault=fault.status < 500,
            )


FAULTS = FaultStore()
