"""Work written as *steps*, so that several models can share their passes over X.

A step function is a generator: it yields a request for a pass over all rows
(an object with ``run(backend, X, sample_weight)`` and
``run_many(backend, X, sample_weight, requests)``, e.g.
:class:`fastem.kmeans.AssignPass`), receives the pass's answer, and finally
returns its result. Alone (:func:`run_alone`) every request is its own pass;
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

    def advance(i, answer):
        try:
            pending[i] = next(steps_list[i]) if answer is None else steps_list[i].send(answer)
        except StopIteration as done:
            results[i] = done.value

    for i in range(len(steps_list)):
        advance(i, None)
    while pending:
        waiting, pending = pending, {}
        by_type = {}
        for i, request in waiting.items():
            by_type.setdefault(type(request), []).append(i)
        answers = {}
        for kind, indices in by_type.items():
            replies = kind.run_many(backend, X, sample_weight, [waiting[i] for i in indices])
            answers.update(zip(indices, replies))
        for i in waiting:  # in list order: dict order is insertion order
            advance(i, answers[i])
    return results
