"""Performance model of one vLLM-like replica in virtual time: pure, no clock, no I/O.

Continuous batching with a FIFO waiting queue, max_num_seqs, a per-step token budget
(chunked prefill), a block-granular KV cache with a watermark for admission and preemption
by recompute. Decode steps are taken in *leaps*: between two changes (an arrival, a finish,
a prefill chunk, a KV block shortage) every running sequence gains one token per step, so k
steps cost O(1) instead of O(k · batch). The simulator and the simulated server share it.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

from swell.engines import presets, stats

_WAITING, _PREFILL, _DECODE = 0, 1, 2
_LEAP_WITH_CONTEXT_COST = 64  # steps before the step time is recomputed from the grown context


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    id: str
    input_tokens: int
    output_tokens: int  # tokens to generate (the client's max_tokens; the model never stops early)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstToken:
    time: float
    request_id: str
    ttft: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Preempted:
    time: float
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    time: float
    request_id: str
    reason: str  # "length" (all tokens generated) or "abort"
    input_tokens: int
    output_tokens: int  # tokens actually generated
    arrival: float
    queue_time: float | None  # None: aborted before it was ever scheduled
    ttft: float | None
    e2e: float
    preemptions: int


Event = FirstToken | Preempted | Finished


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaState:
    time: float
    running: int  # admitted sequences (prefilling or decoding), vllm:num_requests_running
    waiting: int  # vllm:num_requests_waiting (includes preempted ones)
    kv_cache_usage: float  # used blocks / all blocks, 0..1
    busy_seconds: float  # cumulative time spent in steps (GPU busy), for DCGM_FI_DEV_GPU_UTIL


class _Seq:
    __slots__ = ("arrival", "finish_step", "first_token", "g0", "id", "last_token", "phase", "preemptions",
                 "prefill_left", "prefill_total", "prompt", "s0", "scheduled", "state", "target")  # fmt: skip

    def __init__(self, r: Request, now: float) -> None:
        self.id, self.prompt, self.target, self.arrival = r.id, r.input_tokens, r.output_tokens, now
        self.scheduled: float | None = None
        self.first_token: float | None = None
        self.last_token = now
        self.g0 = self.s0 = 0  # tokens generated when it (re)entered decode at global step s0
        self.prefill_total = self.prefill_left = r.input_tokens  # to (re)compute: prompt + generated
        self.state, self.phase, self.finish_step, self.preemptions = _WAITING, 0, 0, 0


class Replica:
    """One replica. Tell it the time: `submit(now, r)`, `advance(until)`, `next_event_time()`."""

    def __init__(self, preset: presets.LlmPreset) -> None:
        self.preset = preset
        self.stats = stats.LlmStats(preset.max_model_len)
        self._bs = preset.block_size
        self._total_blocks = preset.kv_cache_blocks
        self._watermark = max(1, math.ceil(0.01 * self._total_blocks))  # vLLM's 1 % admission headroom
        self._used_blocks = 0
        self._waiting: deque[_Seq] = deque()
        self._running: dict[str, _Seq] = {}  # admission order; the last one is preempted first
        self._prefilling: list[_Seq] = []
        self._seqs: dict[str, _Seq] = {}
        self._n_dec = 0
        self._phase_counts = [0] * self._bs  # decoders by (stored tokens - step) mod block size
        self._heap: list[tuple[int, int, _Seq]] = []  # (finish step, tiebreak, seq); stale entries skipped
        self._tiebreak = 0
        self._step = 0  # decode steps taken so far (global)
        self._kv_tokens = 0  # tokens cached by decoding sequences
        self._t = 0.0  # start of the current segment (a step boundary)
        self._now = 0.0  # latest time the replica was told
        self._seg_k, self._seg_dt = 0, 0.0  # steps left in the current segment (0 = idle), step time
        self._chunks: list[tuple[_Seq, int]] = []  # prefill work of the current (single-step) segment
        self._busy = 0.0
        self._unplanned = False  # at boundary self._t, the next segment is not chosen yet
        self._pending: list[Event] = []

    # ---- the virtual-time API -------------------------------------------------------------

    def submit(self, now: float, request: Request) -> None:
        """Queue a request arriving at `now`; it joins the batch at the next step boundary."""
        p = self.preset
        if request.id in self._seqs:
            raise ValueError(f"request id {request.id!r} is already in this replica")
        if request.input_tokens < 1 or request.output_tokens < 1:
            raise ValueError(f"request {request.id!r}: input_tokens and output_tokens must be >= 1")
        if request.input_tokens + request.output_tokens > p.max_model_len:
            raise ValueError(
                f"request {request.id!r}: {request.input_tokens} input + {request.output_tokens} output tokens "
                f"exceed max_model_len {p.max_model_len}"
            )
        self._move_to(now)
        s = _Seq(request, now)
        self._seqs[s.id] = s
        self._waiting.append(s)
        self._cut_segment(now)

    def answering(self, request_id: str) -> bool:
        """Whether a request has had its first token (or is no longer here); False while it waits
        or is still in its first prefill."""
        s = self._seqs.get(request_id)
        return s is None or s.first_token is not None

    def abort(self, now: float, request_id: str) -> bool:
        """Drop a request (client went away). False if it is unknown or already finished."""
        self._move_to(now)
        s = self._seqs.get(request_id)
        if s is None:
            return False
        if s.state == _WAITING:
            self._waiting.remove(s)
        elif s.state == _PREFILL:
            self._prefilling.remove(s)
        self._finish(s, now, "abort")
        self._cut_segment(now)
        return True

    def advance(self, until: float) -> list[Event]:
        """Run every step that ends by `until`; return the events, oldest first."""
        self._move_to(until)
        out, self._pending = self._pending, []
        return out

    def next_event_time(self) -> float | None:
        """When the state next changes on its own (end of the current step or leap); None if idle.

        This commits the step starting now: submit everything arriving now before asking.
        """
        if self._pending:
            return self._now
        if self._unplanned:
            self._schedule()
        return self._t + self._seg_k * self._seg_dt if self._seg_k else None

    def next_step_time(self) -> float | None:
        """End of the step in progress: where a streaming server paces its next tokens."""
        if self._unplanned:
            self._schedule()
        return self._t + self._seg_dt if self._seg_k else None

    def generated_tokens(self, request_id: str) -> int | None:
        """Tokens generated so far by a live request (None once finished or unknown)."""
        s = self._seqs.get(request_id)
        if s is None:
            return None
        return s.g0 + (self._step - s.s0) if s.state == _DECODE else s.g0

    def state(self, now: float | None = None) -> ReplicaState:
        t = self._now if now is None else max(now, self._now)
        return ReplicaState(time=t, running=len(self._running), waiting=len(self._waiting),
                            kv_cache_usage=self._used_blocks / self._total_blocks, busy_seconds=self.busy_seconds(t))  # fmt: skip

    def busy_seconds(self, now: float) -> float:
        """Cumulative busy time at `now`, counting the part of the step in progress."""
        if not self._seg_k:
            return self._busy
        return self._busy + min(max(0.0, now - self._t), self._seg_k * self._seg_dt)

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def kv_cache_usage(self) -> float:
        return self._used_blocks / self._total_blocks

    # ---- mechanics ------------------------------------------------------------------------

    def _move_to(self, until: float) -> None:
        if until < self._now:
            raise ValueError(f"time went backwards: {until} < {self._now}")
        self._now = until
        while True:
            if self._unplanned:
                if until <= self._t:
                    return  # more requests may still arrive at this very instant
                self._schedule()
            if not self._seg_k:
                return
            if self._t + self._seg_k * self._seg_dt <= until:
                self._complete(self._seg_k)
                self._unplanned = True
            else:
                # the epsilon keeps float rounding from stalling on a boundary the caller asked for
                j = min(int((until - self._t) / self._seg_dt + 1e-9), self._seg_k - 1)
                if j > 0:
                    self._complete(j)
                return

    def _cut_segment(self, now: float) -> None:
        """Something changed at `now`: end the current leap at the first boundary after it."""
        if not self._seg_k:
            self._t = now
            self._unplanned = True
        elif self._seg_k > 1:
            self._seg_k = min(self._seg_k, max(1, math.ceil((now - self._t) / self._seg_dt - 1e-9)))

    def _crossings(self, k: int) -> int:
        """New KV blocks the decoders need over the next k steps."""
        n, bs = self._n_dec, self._bs
        if n == 0 or k <= 0:
            return 0
        full, rem = divmod(k, bs)
        pc, s = self._phase_counts, self._step
        return full * n + sum(pc[(-(s + j)) % bs] for j in range(rem))

    def _steps_within(self, free: int, cap: int) -> int:
        """Largest k <= cap whose block needs fit in `free` blocks."""
        if self._crossings(cap) <= free:
            return cap
        full = free // self._n_dec
        k, used = full * self._bs, full * self._n_dec
        pc, s, bs = self._phase_counts, self._step, self._bs
        for j in range(bs):
            c = pc[(-(s + j)) % bs]
            if used + c > free:
                break
            used += c
            k += 1
        return min(k, cap)

    def _step_time(self, prefill_tokens: int, pairs: int = 0) -> float:
        p = self.preset
        extra = p.decode_per_seq_s * self._n_dec + p.decode_per_context_token_s * self._kv_tokens
        if prefill_tokens:
            prefill = p.prefill_per_token_s * prefill_tokens + p.prefill_per_token_pair_s * pairs
            return max(p.prefill_base_s, p.decode_base_s) + prefill + extra
        return p.decode_base_s + extra

    def _schedule(self) -> None:
        """At boundary self._t: preempt if KV is short, pick prefill chunks, admit, plan a segment."""
        self._unplanned = False
        p, bs = self.preset, self._bs
        while self._n_dec and self._crossings(1) > self._total_blocks - self._used_blocks:
            self._preempt(next(reversed(self._running.values())))
        budget = p.max_num_batched_tokens - self._n_dec
        reserved = self._crossings(1)  # blocks the decoders take in this very step
        chunks: list[tuple[_Seq, int]] = []
        prefill = 0
        for s in self._prefilling:
            if budget <= 0:
                break
            n = min(s.prefill_left, budget)
            chunks.append((s, n))
            budget, prefill = budget - n, prefill + n
        while budget > 0 and self._waiting and len(self._running) < p.max_num_seqs:
            s = self._waiting[0]
            blocks = -(-s.prefill_total // bs)
            free = self._total_blocks - self._used_blocks - reserved
            if blocks + (self._watermark if self._running else 0) > free:
                break  # FCFS: the head waits, nobody overtakes it
            self._waiting.popleft()
            self._used_blocks += blocks
            s.state = _PREFILL
            self._running[s.id] = s
            self._prefilling.append(s)
            if s.scheduled is None:
                s.scheduled = self._t
                self.stats.request_queue_time.observe(self._t - s.arrival)
            n = min(s.prefill_left, budget)
            chunks.append((s, n))
            budget, prefill = budget - n, prefill + n
        self._chunks = chunks
        if chunks:
            # attention: each chunk token attends to the tokens before it (causal, earlier chunks cached)
            pairs = sum(n * (s.prefill_total - s.prefill_left) + n * (n + 1) // 2 for s, n in chunks)
            self._seg_k, self._seg_dt = 1, max(1e-9, self._step_time(prefill, pairs))
        elif self._n_dec:
            while self._heap[0][2].state != _DECODE or self._heap[0][2].finish_step != self._heap[0][0]:
                heapq.heappop(self._heap)  # stale: preempted or aborted since it was pushed
            k = self._heap[0][0] - self._step
            if p.decode_per_context_token_s:
                k = min(k, _LEAP_WITH_CONTEXT_COST)
            self._seg_k = self._steps_within(self._total_blocks - self._used_blocks, k)
            self._seg_dt = max(1e-9, self._step_time(0))
        else:
            self._seg_k = 0

    def _complete(self, j: int) -> None:
        """Finish j steps of the current segment."""
        dt, n = self._seg_dt, self._n_dec
        end = self._t + j * dt
        if n:
            self._used_blocks += self._crossings(j)
            self._step += j
            self._kv_tokens += n * j
            self.stats.generation_tokens += n * j
            self.stats.inter_token_latency.observe(dt, n * j)
        self._busy += j * dt
        self._t = end
        self._seg_k -= j
        if not self._seg_k and self._chunks:
            for s, tokens in self._chunks:
                if s.state == _PREFILL:  # not aborted or preempted meanwhile
                    s.prefill_left -= tokens
                    if s.prefill_left == 0:
                        self._prefill_done(s, end)
            self._chunks = []
        heap = self._heap
        while heap and heap[0][0] <= self._step:
            _, _, s = heapq.heappop(heap)
            if s.state == _DECODE and s.finish_step <= self._step:
                self._finish(s, end, "length")

    def _prefill_done(self, s: _Seq, t: float) -> None:
        self._prefilling.remove(s)
        st = self.stats
        st.generation_tokens += 1
        if s.first_token is None:
            s.first_token = t
            st.prompt_tokens += s.prompt
            st.time_to_first_token.observe(t - s.arrival)
            self._pending.append(FirstToken(time=t, request_id=s.id, ttft=t - s.arrival))
        else:  # the token after a recompute: one long inter-token gap
            st.inter_token_latency.observe(t - s.last_token)
        s.g0 += 1
        if s.g0 >= s.target:
            s.state = _DECODE
            s.s0 = self._step
            self._finish(s, t, "length", counted=False)
            return
        s.state, s.s0 = _DECODE, self._step
        s.phase = (s.prefill_total - self._step) % self._bs
        s.finish_step = self._step + s.target - s.g0
        self._phase_counts[s.phase] += 1
        self._n_dec += 1
        self._kv_tokens += s.prefill_total
        self._tiebreak += 1
        heapq.heappush(self._heap, (s.finish_step, self._tiebreak, s))

    def _release(self, s: _Seq, counted: bool = True) -> int:
        """Take s out of the batch, free its blocks; return tokens generated so far."""
        if s.state == _DECODE:
            done = self._step - s.s0
            if counted:
                self._phase_counts[s.phase] -= 1
                self._n_dec -= 1
                self._kv_tokens -= s.prefill_total + done
            self._used_blocks -= -(-(s.prefill_total + done) // self._bs)
            del self._running[s.id]
            return s.g0 + done
        if s.state == _PREFILL:
            self._used_blocks -= -(-s.prefill_total // self._bs)
            del self._running[s.id]
        return s.g0

    def _preempt(self, s: _Seq) -> None:
        if s.state == _PREFILL:
            self._prefilling.remove(s)
        g = self._release(s)
        s.g0 = g
        s.prefill_total = s.prompt + g  # recompute prompt and everything generated so far
        s.prefill_left = s.prefill_total
        s.last_token = self._t
        s.state = _WAITING
        s.preemptions += 1
        self._waiting.appendleft(s)
        self.stats.num_preemptions += 1
        self._pending.append(Preempted(time=self._t, request_id=s.id))

    def _finish(self, s: _Seq, t: float, reason: str, counted: bool = True) -> None:
        g = self._release(s, counted)
        del self._seqs[s.id]
        self.stats.record_finished(reason, s.arrival, s.scheduled, s.first_token, t, s.prompt, g)
        queue = None if s.scheduled is None else s.scheduled - s.arrival
        ttft = None if s.first_token is None else s.first_token - s.arrival
        s.state = -1
        self._pending.append(
            Finished(time=t, request_id=s.id, reason=reason, input_tokens=s.prompt, output_tokens=g,
                     arrival=s.arrival, queue_time=queue, ttft=ttft, e2e=t - s.arrival,
                     preemptions=s.preemptions)
        )  # fmt: skip
