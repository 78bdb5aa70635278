"""Active health checks: each probed provider is asked ``probe()`` every interval, jittered.

Rule fed into routing: a target whose provider failed its last probe is demoted to the end
of the fallback order (keeping its tier order among the demoted), so it is not called while
any other target is usable, but is still tried as a last resort (a probe can fail while
chat still works, e.g. an Ollama without ``/v1/models``). Readiness counts such targets as
unusable, and so does a target whose model is missing from the list the probe got back
(a model never pulled into Ollama): its health says what to run.

A provider kind with no free health call reports "not probed", never a made-up OK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from llm_gateway_server.config.providers import ProviderConfig, ProviderKind
from llm_gateway_server.core.redaction import redact
from llm_gateway_server.core.types import ProbeResult
from llm_gateway_server.providers.base import Provider

_log = logging.getLogger(__name__)

#: Interval jitter: each wait is the interval times a factor in [1 - J, 1 + J].
JITTER = 0.2


@dataclass(slots=True)
class ProbeState:
    """The last probe of one provider."""

    ok: bool | None = None
    error: str = ""
    at: datetime | None = None
    latency_s: float = 0.0
    #: The models the upstream listed (normalized, see ``model_key``); ``None``: unknown,
    #: or a server that answers under any model name.
    models: frozenset[str] | None = None

    @property
    def failed(self) -> bool:
        """True when the last probe ran and failed."""
        return self.ok is False

    def record(self, result: ProbeResult) -> None:
        """Take in one probe's result."""
        self.ok = result.ok if result.probed else None
        self.error = result.error
        self.latency_s = result.latency_s
        self.at = datetime.now(UTC) if result.probed else None
        if not result.ok or not result.probed:
            self.models = None
        elif result.any_model or not result.models:
            # An empty list is more likely a server that lists nothing than one with no
            # model at all; calls will tell.
            self.models = None
        else:
            self.models = frozenset(model_key(m) for m in result.models[:_MAX_MODELS])

    def missing(self, model: str) -> bool:
        """True when the last probe listed the upstream's models and ``model`` is not one."""
        return self.ok is True and self.models is not None and model_key(model) not in self.models


#: Models of one listing kept at most (an upstream may list thousands).
_MAX_MODELS = 10_000


def model_key(name: str) -> str:
    """A model name as listings compare: case-insensitive, Ollama's implicit ``:latest``."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def missing_model_hint(provider: str, model: str, config: ProviderConfig) -> str:
    """What a target whose model the upstream does not list reports, and what to run."""
    base = (config.api_base or "").lower()
    ollama = config.kind is ProviderKind.OLLAMA or "ollama" in provider.lower() or ":11434" in base
    shown = model if len(model) <= 200 else model[:200] + "..."
    if ollama:
        return f"model {shown!r} is not pulled on {provider!r}: run `ollama pull {shown}`"
    return f"model {shown!r} is not in {provider!r}'s model list: load or serve it there"


class ProbeRunner:
    """Owns one probe task per probed provider; ``stop`` leaves no task behind."""

    def __init__(self, on_change: Callable[[], None], *, rng: random.Random | None = None) -> None:
        """``on_change`` runs after each probe whose result differs from the last one."""
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._keys: dict[str, tuple[object, ProviderConfig]] = {}

    def sync(
        self,
        configs: Mapping[str, ProviderConfig],
        providers: Mapping[str, Provider],
        states: Mapping[str, ProbeState],
    ) -> None:
        """Run exactly the probe tasks ``configs`` asks for (call inside the loop).

        A task whose provider object and config are unchanged keeps running.
        """
        wanted = {
            name
            for name, cfg in configs.items()
            if cfg.probe_enabled and name in providers and name in states
        }
        for name in list(self._tasks):
            key = self._keys.get(name)
            if name not in wanted or key != (providers[name], configs[name]):
                self._cancel(name)
        for name in sorted(wanted - set(self._tasks)):
            self._keys[name] = (providers[name], configs[name])
            self._tasks[name] = asyncio.get_running_loop().create_task(
                self._loop(name, configs[name], providers[name], states[name]),
                name=f"llm-gateway probe {name}",
            )

    def _cancel(self, name: str) -> None:
        task = self._tasks.pop(name)
        self._keys.pop(name, None)
        task.cancel()
        # Kept until it has finished, so ``stop`` can wait for it too.
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def stop(self) -> None:
        """Cancel every probe task and wait until they are gone."""
        for name in list(self._tasks):
            self._cancel(name)
        for task in list(self._stopping):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(
        self, name: str, config: ProviderConfig, provider: Provider, state: ProbeState
    ) -> None:
        # The first probe runs at once (after a short jitter) so Health and readiness
        # reflect reality soon after start and reload.
        wait = self._rng.uniform(0.0, JITTER * config.probe.interval_s)
        while True:
            await asyncio.sleep(wait)
            result = await probe_once(provider, config)
            if not result.probed:
                state.record(result)
                return  # nothing to ask this kind, now or later
            before = (state.ok, state.models)
            state.record(result)
            changed = (state.ok, state.models) != before
            if changed:
                if result.ok:
                    _log.info("provider %s: probe ok (%.3f s)", name, result.latency_s)
                else:
                    _log.warning("provider %s: probe failed: %s", name, result.error)
                self._on_change()
            wait = config.probe.interval_s * self._rng.uniform(1 - JITTER, 1 + JITTER)


async def probe_once(provider: Provider, config: ProviderConfig) -> ProbeResult:
    """Probe once, bounded by ``probe.timeout_s`` even if the adapter overruns it."""
    timeout = config.probe.timeout_s
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(timeout * 1.5):
            return await provider.probe(timeout_s=timeout)
    except TimeoutError:
        return ProbeResult(ok=False, latency_s=loop.time() - started, error="probe timed out")
    except Exception as exc:  # probe() must not raise; a buggy adapter must not kill the loop
        _log.exception("provider %s: probe raised", provider.name)
        return ProbeResult(
            ok=False,
            latency_s=loop.time() - started,
            error=redact(f"probe raised {type(exc).__name__}"),
        )
