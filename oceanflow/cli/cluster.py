"""``oceanflow cluster``: the cluster profiles, or a batch job script."""

from __future__ import annotations

from ._common import UsageError

HELP = "list the cluster profiles, or print a batch job script"
EXAMPLES = """examples:
  oceanflow cluster                                 # list the cluster profiles
  oceanflow cluster --job-script slurm --profile mycluster"""


def arguments(parser) -> None:
    parser.add_argument("--job-script", metavar="KIND", help="print the job script of KIND (slurm, pbs, ...)")
    parser.add_argument("--profile", metavar="NAME", help="profile for --job-script")


def check(args) -> None:
    if args.profile and not args.job_script:
        raise UsageError("--profile goes with --job-script KIND")


def run(args, operation) -> None:
    from oceanflow import cluster

    if args.job_script:
        print(cluster.job_script(args.job_script, profile=args.profile))
        return
    profiles = cluster.profiles()
    print(f"kinds: {', '.join(cluster.KINDS)}")
    if not profiles:
        print("profiles: none")
    for name, profile in profiles.items():
        print(f"{name}: {profile}")
