"""Synthetic users and their requests (spec §3.1, §3.2, §3.5, §3.6).

One scheduler thread plays every user (a heap of next-arrival times instead of one thread per user: same
open-loop arrivals, fewer threads, and a deterministic request sequence for a given seed). Requests go into a
*bounded* priority queue (higher QoS first, FIFO within a class); when it is full the scheduler waits, so
queueing delay cannot grow without bound (reference defect §9 #6). All random draws happen in the scheduler,
so the per-request decisions (prefix probe, RAG read) are reproducible.
"""

from __future__ import annotations

import heapq
import hashlib
import itertools
import math
import queue
import random
import threading
import time
from dataclasses import dataclass, field

PERSONAS = {  # context tokens, generated tokens, think time (s)
    "chatbot": ((512, 4096), (50, 200), (0.1, 0.5)),
    "coding": ((4096, 25000), (100, 500), (0.2, 1.0)),
    "document": ((4096, 16384), (200, 800), (0.3, 1.5)),
}
QOS_PRIORITY = {"interactive": 3, "responsive": 2, "batch": 1}
PREFILL_ONLY_TOKENS = 10_000
DECODE_BATCH = 32
CONVERSATION_END_PROBABILITY = 0.2
MAX_TURNS = 50
PREFIX_PROBABILITY = 0.2
RAG_PROBABILITY = 0.1
RAG_TOP_K = 5
SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a careful coding assistant; answer with code.",
    "Summarise the document the user provides, citing sections.",
)
GENERATION_SECONDS_PER_TOKEN = {"none": 0.0, "fast": 0.002, "realistic": 0.030}


def decode_reads(generated_tokens: int) -> int:
    """Whole-object reads of one decode on a hit: the probe plus max(1, ceil(gen / 32)) batched reads."""
    return 1 + max(1, math.ceil(generated_tokens / DECODE_BATCH))


@dataclass
class User:
    user_id: str
    persona: str
    qos: str
    context_length: int
    generation_length: int
    think_time: float
    conv_id: str | None = None
    conv_keys: list = field(default_factory=list)
    conv_count: int = 0
    request_count: int = 0


@dataclass(order=False)
class Request:
    user_id: str
    key: str
    context: int
    generate: int
    qos: str
    phase: str  # "prefill", "prefill_decode" or "decode"
    earlier_turns: tuple = ()
    system_prompt_key: str | None = None
    rag_chunks: tuple = ()
    enqueue_time: float = 0.0


def make_users(n: int, rng: random.Random) -> list[User]:
    users = []
    for i in range(n):
        persona = rng.choice(tuple(PERSONAS))
        (c_lo, c_hi), (g_lo, g_hi), (t_lo, t_hi) = PERSONAS[persona]
        r = rng.random()
        qos = "interactive" if r < 0.15 else "responsive" if r < 0.50 else "batch"
        users.append(User(f"user_{i:04d}", persona, qos, rng.randint(c_lo, c_hi), rng.randint(g_lo, g_hi),
                          rng.uniform(t_lo, t_hi)))
    return users


def system_prompt_key(prompt: str) -> str:
    return "kv_system_" + hashlib.sha256(prompt.encode()).hexdigest()[:16]


class RequestFactory:
    """Turns a user's next turn into a Request, following the reference's rules."""

    def __init__(self, rng: random.Random, multi_turn: bool = True, prefix_caching: bool = True,
                 rag_docs: dict | None = None):
        self.rng, self.multi_turn, self.prefix_caching = rng, multi_turn, prefix_caching
        self.rag_docs = rag_docs or {}  # doc id -> list of (chunk key, tokens)

    def next_request(self, user: User) -> Request:
        rng = self.rng
        context = rng.randint(max(1, user.context_length // 4), user.context_length)
        generate = rng.randint(max(1, user.generation_length // 4), user.generation_length)
        user.request_count += 1
        earlier: tuple = ()
        if self.multi_turn:
            if user.conv_id is not None and (rng.random() >= 1 - CONVERSATION_END_PROBABILITY
                                             or len(user.conv_keys) >= MAX_TURNS):
                user.conv_id, user.conv_keys = None, []
            if user.conv_id is None:
                user.conv_count += 1
                user.conv_id, user.conv_keys = f"conv_{user.user_id}_{user.conv_count}", []
            earlier = tuple(user.conv_keys)
            key = f"{user.conv_id}_turn_{len(user.conv_keys) + 1}"
            user.conv_keys.append(key)
        else:
            key = f"{user.user_id}_req_{user.request_count:06d}"
        prompt_key = None
        if self.prefix_caching and rng.random() < PREFIX_PROBABILITY:
            prompt = rng.choice(SYSTEM_PROMPTS)
            prompt_key = system_prompt_key(prompt)  # never written: a guaranteed miss, as in the reference
            context = max(1, context - len(prompt.split()))
        phase = "prefill" if context >= PREFILL_ONLY_TOKENS else "prefill_decode"
        rag = self.pick_rag_chunks() if self.rag_docs and rng.random() < RAG_PROBABILITY else ()
        return Request(user.user_id, key, context, generate, user.qos, phase, earlier, prompt_key, rag)

    def pick_rag_chunks(self, doc: str | None = None) -> tuple:
        """Top-k chunks of a (random) document, drawn without replacement with Zipf weights 1/(i+1)."""
        chunks = list(self.rag_docs[doc or self.rng.choice(sorted(self.rag_docs))])
        picked = []
        for _ in range(min(RAG_TOP_K, len(chunks))):
            weights = [1.0 / (i + 1) for i in range(len(chunks))]
            picked.append(chunks.pop(self.rng.choices(range(len(chunks)), weights)[0]))
        return tuple(picked)

    def rag_request(self, user: User) -> Request:
        doc = self.rng.choice(sorted(self.rag_docs))
        tokens = sum(t for _, t in self.pick_rag_chunks(doc))
        # the key is the document's, not a chunk's: the first decode probe misses and writes it (reference)
        return Request(user.user_id, f"rag_{doc}", max(1, tokens), self.rng.randint(50, 200), user.qos, "decode")


class Scheduler(threading.Thread):
    """Plays the users' open-loop arrivals into a bounded priority queue until stopped."""

    def __init__(self, users: list[User], factory: RequestFactory, q: queue.PriorityQueue, stop: threading.Event,
                 max_requests: int = 0):
        super().__init__(name="kvcache-users", daemon=True)
        self.users, self.factory, self.q, self.stop = users, factory, q, stop
        self.max_requests = max_requests
        self.enqueued = 0
        self._seq = itertools.count()

    def _put(self, req: Request) -> bool:
        req.enqueue_time = time.monotonic()
        item = (-QOS_PRIORITY[req.qos], req.enqueue_time, next(self._seq), req)
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                self.enqueued += 1
                return True
            except queue.Full:
                continue
        return False

    def run(self):
        rng = self.factory.rng
        start = time.monotonic()
        heap = [(start, i) for i in range(len(self.users))]  # every user sends its first request at once
        heapq.heapify(heap)
        while heap and not self.stop.is_set():
            due, i = heapq.heappop(heap)
            wait = due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return
            user = self.users[i]
            if not self._put(self.factory.next_request(user)):
                return
            if self.factory.rag_docs and rng.random() < RAG_PROBABILITY:
                if not self._put(self.factory.rag_request(user)):
                    return
            if self.max_requests and self.enqueued >= self.max_requests:
                return
            heapq.heappush(heap, (max(due, time.monotonic()) + user.think_time * rng.uniform(0.8, 1.2), i))
