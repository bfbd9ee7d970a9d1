"""Reading and replaying a Keras functional graph.

A keras-hub model is a functional graph: each layer call is a node that records
its layer and its arguments. `call_nodes` lists the calls in the order the model
runs them (a layer called N times, like ALBERT's shared block, gives N nodes);
`replay` runs part of the graph again from tensors already computed, calling
only the nodes that the wanted outputs need — the same walk as Keras'
`Functional.call`, with a hook that decides how each node runs.
"""

from keras import ops
from keras import tree


def call_nodes(model):
    """Every call node of the functional `model`, in an order that runs it."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:
        raise ValueError(
            f"{type(model).__name__} is not a functional Keras model: its layer "
            f"calls cannot be read."
        )
    return [
        node
        for depth in sorted(by_depth, reverse=True)
        for node in by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def producer(tensor):
    """The node whose call made the symbolic `tensor`."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def feed(model, inputs):
    """{id(model input): value} from a dict of named inputs (extra keys ignored),
    converted to each input's dtype as `Functional.call` does."""
    struct = model._inputs_struct
    if isinstance(struct, dict):
        missing = sorted(set(struct) - set(inputs)) if isinstance(inputs, dict) else None
        if missing is None or missing:
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"{type(model).__name__} takes the inputs {sorted(struct)}; got "
                f"{got}. Tokenise with the model's own preprocessor."
            )
        pairs = [(struct[name], inputs[name]) for name in struct]
    else:
        pairs = zip(tree.flatten(struct), tree.flatten(inputs))
    return {id(symbolic): _as(value, symbolic.dtype) for symbolic, value in pairs}


def _as(value, dtype):
    value = ops.convert_to_tensor(value)
    return value if value.dtype == dtype else ops.cast(value, dtype)


def run_layer(node, args, kwargs, training):
    """Call a node's operation as `Functional.call` does (with `training` for the
    layers that take it)."""
    operation = node.operation
    if "training" in getattr(operation, "_call_context_args", ()):
        kwargs = {**kwargs, "training": training}
    return operation(*args, **kwargs)


def replay(model, targets, values, run):
    """The values of the symbolic `targets` of `model`'s graph.

    Args:
        model: a functional model.
        targets: symbolic tensors of its graph.
        values: {id(symbolic tensor): value} already known (the model's inputs,
            tensors computed earlier); updated in place with every value computed.
        run: ``run(node, args, kwargs)`` → the node's outputs.
    """
    needed = needed_nodes(targets, values)
    for node in call_nodes(model):
        if id(node) in needed:
            args, kwargs = node.arguments.fill_in(values)
            for symbolic, value in zip(node.outputs, tree.flatten(run(node, args, kwargs))):
                values[id(symbolic)] = value
    return [values[id(t)] for t in targets]


def needed_nodes(targets, values):
    """The ids of the nodes between the known `values` and the `targets`."""
    needed, stack = set(), list(targets)
    while stack:
        tensor = stack.pop()
        if id(tensor) in values:
            continue
        node = producer(tensor)
        if node.is_input:
            raise ValueError(f"The input {tensor.name!r} was not fed to the graph.")
        if id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input_tensors)
    return needed
