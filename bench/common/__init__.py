"""What the benchmarks beside this folder share: a Synapse of the deployment's rendering with a
Cercle process beside it (``homeserver``), the E2EE clients that time what they see
(``clients``) and the figures (``measures``). Not a bench itself (``make bench`` runs only
``bench/*.py``)."""
