"""Passes over X as *requests*, and work written as *steps* that yield them,
so that several models can share their passes over X.

A pass request is an object with ``run(backend, X, sample_weight)`` (the
pass alone) and ``run_many(backend, X, sample_weight, requests)`` (one pass
answering several requests of its type), e.g. :class:`GaussianPass` (the
E-step of the Gaussian mixtures) or :class:`fastem.kmeans.AssignPass`. A
model family asks for its E-step by returning one
(``family.e_step(params)``, see ``fastem._em``); the backend answers it
without knowing which family asked; :func:`answer` answers several, one pass
per request type.

A step function is a generator: it yields a pass request, receives the
pass's answer, and finally returns its result. Alone (:func:`run_alone`) every request is its own pass;
together (:func:`run_together`) each round answers the pending requests of
every generator with one shared pass per request type, so a sweep over k
reads X once per round instead of once per candidate.

Random draws: :func:`run_together` advances the generators in list order, one
round at a time. A generator that draws from a random stream shared with
another one must draw only before its first request (then the stream is used
in the order of running them one after the other); the k-means initialisation
does (sample, seeding and Lloyd on the sample first; the passes over all rows
draw nothing).
"""

from __future__ import annotations

import numpy as np


class GaussianPass:
    """The E-step pass of a Gaussian mixture (EM or mean-field VI): the
    responsibilities under ``inputs`` (``fastem._model.KernelInputs``) and the
    statistics they weight (``fastem._model.Stats``); over incomplete data
    when ``inputs.missing``. Several requests share one pass
    (``backend.accumulate_many``)."""

    def __init__(self, inputs):
        self.inputs = inputs

    def run(self, backend, X, sample_weight):
        return GaussianPass.run_many(backend, X, sample_weight, [self], shared=False)[0]

    @staticmethod
    def run_many(backend, X, sample_weight, requests, shared=True):
        """The requests' statistics, in one pass (``shared``) or one's own.

        A float32 pass whose log-likelihood is not finite lost a row (a
        squared distance beyond float32's range, about 1e19 standard
        deviations, that float64 holds): that model's pass runs again in
        float64, so that a far row never turns into an error, or a wrong
        fit, that float64 would not give."""
        inputs = [r.inputs for r in requests]
        out = (backend.accumulate_many(X, inputs, sample_weight) if shared
               else [backend.accumulate(X, inputs[0], sample_weight)])
        lost = [i for i, st in enumerate(out)
                if st.round_off and not np.isfinite(st.log_likelihood)]
        if lost:
            wide = backend.in_float64()
            again = [wide.accumulate(X, inputs[i], sample_weight) for i in lost]
            for i, st in zip(lost, again):
                out[i] = st
        return out


def answer(requests, backend, X, sample_weight) -> list:
    """The answers to several pass requests, in order: one shared pass per
    request type (``run_many``), the types in order of first appearance; a
    type asked for once runs its own pass (``run``), so that one model, or
    the last model still iterating, gets the pass it gets alone."""
    by_type = {}
    for i, request in enumerate(requests):
        by_type.setdefault(type(request), []).append(i)
    out = [None] * len(requests)
    for kind, indices in by_type.items():
        if len(indices) == 1:
            out[indices[0]] = requests[indices[0]].run(backend, X, sample_weight)
            continue
        replies = kind.run_many(backend, X, sample_weight, [requests[i] for i in indices])
        for i, reply in zip(indices, replies):
            out[i] = reply
    return out


def run_alone(steps, backend, X, sample_weight):
    """Drive one step generator, answering each request with a pass of its own;
    returns the generator's result."""
    try:
        request = next(steps)
        while True:
            request = steps.send(request.run(backend, X, sample_weight))
    except StopIteration as done:
        return done.value


def run_together(steps_list, backend, X, sample_weight) -> list:
    """Drive several step generators in rounds; each round answers every
    pending request with one shared pass per request type.

    Returns
    -------
    list of the generators' results, in order
    """
    results = [None] * len(steps_list)
    pending = {}

    def advance(i, reply):
        try:
            pending[i] = next(steps_list[i]) if reply is None else steps_list[i].send(reply)
        except StopIteration as done:
            results[i] = done.value

    for i in range(len(steps_list)):
        advance(i, None)
    while pending:
        waiting, pending = pending, {}
        replies = answer(list(waiting.values()), backend, X, sample_weight)
        for i, reply in zip(list(waiting), replies):  # in list order: dict order is insertion order
            advance(i, reply)
    return results
