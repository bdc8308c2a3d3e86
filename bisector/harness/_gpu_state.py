"""GPU state (NVML, optional) and runtime facts, recorded with every trial.

nvidia-ml-py is optional: without it, or without a driver, the NVML fields are absent
and ``nvml`` says why. Every NVML query is tried on its own, so a field a driver does
not support leaves out only that field.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from typing import Any

_THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # a field the driver or card does not support is left out
        return None


class Nvml:
    """A handle on one GPU through NVML, or an inert object when NVML is unavailable."""

    def __init__(self, torch_uuid: str | None, index: int) -> None:
        self.error: str | None = None
        self._nv: Any = None
        self._handle: Any = None
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self._nv = pynvml
        self._handle = self._find(torch_uuid, index)
        if self._handle is None:
            self.error = "no NVML device matches the torch device"

    def _find(self, torch_uuid: str | None, index: int) -> Any:
        nv = self._nv
        # Match by UUID: NVML indexes ignore CUDA_VISIBLE_DEVICES, torch's do not.
        if torch_uuid:
            want = torch_uuid.lower().removeprefix("gpu-")
            for i in range(_try(nv.nvmlDeviceGetCount) or 0):
                try:
                    handle = nv.nvmlDeviceGetHandleByIndex(i)
                    uuid = _text(nv.nvmlDeviceGetUUID(handle))
                except Exception:
                    continue
                if uuid.lower().removeprefix("gpu-") == want:
                    return handle
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            entries = [e.strip() for e in visible.split(",")]
            if index >= len(entries) or not entries[index].isdigit():
                return None
            index = int(entries[index])
        return _try(lambda: nv.nvmlDeviceGetHandleByIndex(index))

    @property
    def available(self) -> bool:
        return self._handle is not None

    def static(self) -> dict[str, Any]:
        """Facts that do not change during a run."""
        if not self.available:
            return {"nvml": self.error or "unavailable"}
        nv, h = self._nv, self._handle
        cuda_driver = _try(nv.nvmlSystemGetCudaDriverVersion_v2) or _try(
            nv.nvmlSystemGetCudaDriverVersion
        )
        facts = {
            "nvml": "ok",
            "name": _try(lambda: _text(nv.nvmlDeviceGetName(h))),
            "uuid": _try(lambda: _text(nv.nvmlDeviceGetUUID(h))),
            "driver": _try(lambda: _text(nv.nvmlSystemGetDriverVersion())),
            "cuda_driver": f"{cuda_driver // 1000}.{cuda_driver % 1000 // 10}"
            if cuda_driver
            else None,
            "sm_clock_max_mhz": _try(lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_SM)),
            "mem_clock_max_mhz": _try(lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_MEM)),
            "power_limit_w": _try(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0),
            "persistence_mode": _try(lambda: nv.nvmlDeviceGetPersistenceMode(h)),
            "memory_total_mib": _try(lambda: nv.nvmlDeviceGetMemoryInfo(h).total / 2**20),
        }
        return {k: v for k, v in facts.items() if v is not None}

    def sample(self) -> dict[str, Any]:
        """Facts that drift: clocks, temperature, power, throttling, memory in use."""
        if not self.available:
            return {}
        nv, h = self._nv, self._handle
        reasons = _try(lambda: nv.nvmlDeviceGetCurrentClocksEventReasons(h))
        if reasons is None:
            reasons = _try(lambda: nv.nvmlDeviceGetCurrentClocksThrottleReasons(h))
        facts: dict[str, Any] = {
            "sm_clock_mhz": _try(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            "mem_clock_mhz": _try(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
            "temperature_c": _try(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            "power_w": _try(lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
            "pstate": _try(lambda: nv.nvmlDeviceGetPerformanceState(h)),
            "utilization_pct": _try(lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
            "memory_used_mib": _try(lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
        }
        if reasons is not None:
            facts["throttle_reasons_mask"] = int(reasons)
            facts["throttle_reasons"] = [n for bit, n in _THROTTLE_REASONS.items() if reasons & bit]
        return {k: v for k, v in facts.items() if v is not None}

    def used_mib(self) -> float | None:
        if not self.available:
            return None
        nv, h = self._nv, self._handle
        used = _try(lambda: nv.nvmlDeviceGetMemoryInfo(h).used)
        return None if used is None else used / 2**20


def torch_gpu_facts(torch: Any, device: Any) -> dict[str, Any]:
    """CUDA facts torch knows: device name, capability, CUDA and cuDNN versions."""
    if device.type != "cuda":
        return {}
    props = torch.cuda.get_device_properties(device)
    facts: dict[str, Any] = {
        "torch_name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "sm_count": props.multi_processor_count,
        "torch_total_mib": props.total_memory / 2**20,
        "cuda_runtime": torch.version.cuda,
        "cudnn": _try(torch.backends.cudnn.version),
    }
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        facts["torch_uuid"] = str(uuid)
    return facts


def runtime_facts(torch: Any, device: Any) -> dict[str, Any]:
    """Python, torch and transformers versions, and where the model runs."""
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    try:
        import transformers

        facts["transformers"] = transformers.__version__
    except Exception as exc:  # a factory model may not need transformers
        facts["transformers"] = f"unavailable ({type(exc).__name__})"
    return facts
