"""
The formula rendered by Salt's real loader and state compiler on a masterless minion
(saltfactories' functional ``Loaders``), for functional tests: which states a node
with given roles gets from a pillar, and what ``state.apply`` returns.
"""

import itertools

import yaml

ROLES = ("mon", "controller", "compute")
#: Every role combination a node can have: each role alone and every union.
ROLE_COMBINATIONS = [list(combo) for size in range(1, len(ROLES) + 1)
                     for combo in itertools.combinations(ROLES, size)]


def formula_loaders(minion_opts, pillar_root, pillar_sls=None):
    """
    Salt's loaders for a minion whose pillar tree is ``pillar_root`` (a pathlib.Path,
    created): ``top.sls`` assigns ``pillar_sls`` (the path of a pillar file, copied in as
    ``ceph_openstack.sls``) to every minion, or nothing when it is None.
    """
    from saltfactories.utils.functional import Loaders

    pillar_root.mkdir(parents=True, exist_ok=True)
    assigned = []
    if pillar_sls is not None:
        (pillar_root / "ceph_openstack.sls").write_bytes(pillar_sls.read_bytes())
        assigned = ["ceph_openstack"]
    (pillar_root / "top.sls").write_text(yaml.safe_dump({"base": {"*": assigned}}))
    return Loaders(dict(minion_opts, pillar_roots={"base": [str(pillar_root)]}))


def low_chunks(loaders, roles=None, sls="ceph_openstack", **kwargs):
    """
    The low chunks of ``sls`` in execution order (``state.show_low_sls``) on a
    node with grain ``role`` = ``roles`` (unchanged when None); ``kwargs`` go to
    ``show_low_sls`` (e.g. ``pillar={...}`` as an override). Fails on any render or
    compiler error, showing Salt's messages.
    """
    if roles is not None:
        # Salt's loader reads static grains only from a config file; set the role directly.
        loaders.grains["role"] = roles
    chunks = loaders.modules.state.show_low_sls(sls, **kwargs)
    assert isinstance(chunks, list) and all(isinstance(chunk, dict) for chunk in chunks), \
        chunks  # errors come back as a list of strings
    return sorted(chunks, key=lambda chunk: chunk["order"])


def low_chunks_per_roles(loaders, pillar, combinations=ROLE_COMBINATIONS):
    """
    ``{tuple(roles): chunks}`` for ``ceph_openstack`` rendered with the whole pillar
    ``pillar`` on a node of each role combination: the low chunks in execution order, or
    the list of Salt's render and compiler error messages.

    It does what ``state.show_low_sls`` does (``HighState.render_highstate``,
    ``verify_high``, ``compile_high_data``), but with one HighState for every combination
    and the pillar given as is (no pillar_roots compile): between renders only the grain
    ``role`` and the highstate being built change. About twice as fast; test_formula_order
    checks that both give the same chunks.
    """
    import copy

    import salt.state

    opts = copy.deepcopy(loaders.opts)
    opts.update(grains=copy.deepcopy(loaders.grains), saltenv="base")
    found = {}
    with salt.state.HighState(opts, initial_pillar=copy.deepcopy(pillar)) as highstate:
        for roles in combinations:
            highstate.opts["grains"]["role"] = list(roles)
            # What BaseHighState.__init__ sets up for one render: the auto-order counter
            # and the highstate being built.
            highstate.iorder = 10000
            highstate.building_highstate = type(highstate.building_highstate)()
            highstate.push_active()
            try:
                high, errors = highstate.render_highstate({"base": ["ceph_openstack"]})
            finally:
                highstate.pop_active()
            errors += highstate.state.verify_high(high)
            if not errors:
                compiled = highstate.state.compile_high_data(high)
                # Salt 3007 and later return (chunks, errors); 3006 the chunks alone.
                chunks, errors = compiled if isinstance(compiled, tuple) else (compiled, [])
            found[tuple(roles)] = errors or sorted(chunks, key=lambda chunk: chunk["order"])
    return found
