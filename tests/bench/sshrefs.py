"""The two references `bench_ssh.py` compares Cephalo with, on the same hosts in the same run.

- Ansible: `ansible all -m raw -a 'echo ok' -f 50` with its defaults (OpenSSH client,
  ControlMaster/ControlPersist, host-key checking on). Only where its files go is set: its
  home, temp and control-socket directories are inside the run's directory, the inventory
  names the key and the generated `known_hosts`. Each round gets a fresh control directory
  and its persisted masters are told to exit afterwards, so every round connects anew.
- Bare asyncssh: connect to every host at once, run `echo ok`, close. No database, no
  events, no runner: the practical limit of one Python process driving SSH.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncssh
from sshfarm import SshFarm  # tests/bench (this script's directory)


def write_inventory(farm: SshFarm, hosts: int) -> Path:
    inventory = farm.directory / f"inventory-{hosts}.ini"
    lines = ["[targets]"]
    lines += [
        f"host{index:04d} ansible_host=127.0.0.1 ansible_port={port}"
        for index, port in enumerate(farm.ports[:hosts])
    ]
    lines += [
        "",
        "[targets:vars]",
        f"ansible_user={farm.user}",
        f"ansible_ssh_private_key_file={farm.client_key_file}",
        f"ansible_ssh_common_args='-o UserKnownHostsFile={farm.known_hosts}'",
    ]
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def ansible_environment(home: Path, control: Path) -> dict[str, str]:
    config = home / "ansible.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        {
            "ANSIBLE_CONFIG": str(config),  # empty: the defaults
            "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    return env


async def run_ansible(
    ansible: Path, farm: SshFarm, hosts: int, round_number: int, forks: int = 50
) -> float:
    """Seconds for `ansible all -m raw -a 'echo ok' -f forks`; raises when a host failed."""
    inventory = write_inventory(farm, hosts)
    home = farm.directory / "ansible"
    control = home / f"cp-{hosts}-{round_number}"
    command = [str(ansible), "all", "-i", str(inventory), "-m", "raw", "-a", "echo ok"]
    command += ["-f", str(forks)]
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command,
        env=ansible_environment(home, control),
        cwd=farm.directory,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    elapsed = time.monotonic() - began
    await close_control_masters(control)
    text = output.decode(errors="replace")
    succeeded = text.count("| CHANGED | rc=0")
    if process.returncode != 0 or succeeded != hosts:
        (home / f"failed-{hosts}-{round_number}.log").write_text(text)
        raise RuntimeError(f"ansible: {succeeded}/{hosts} hosts ok, exit {process.returncode}")
    return elapsed


async def close_control_masters(control: Path) -> None:
    """The persisted OpenSSH masters of one round exit, so the next round starts cold."""
    if not control.is_dir():
        return
    sockets = list(control.iterdir())
    limit = asyncio.Semaphore(20)

    async def close(socket: Path) -> None:
        async with limit:
            process = await asyncio.create_subprocess_exec(
                "ssh", "-o", f"ControlPath={socket}", "-O", "exit", "placeholder",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await process.wait()

    await asyncio.gather(*(close(socket) for socket in sockets))


async def run_bare_asyncssh(farm: SshFarm, hosts: int) -> float:
    """Seconds to connect to every host at once and run `echo ok` on each."""
    pinned = asyncssh.import_public_key(farm.host_public_key)

    async def one(port: int) -> bool:
        async with asyncssh.connect(
            "127.0.0.1",
            port,
            username=farm.user,
            client_keys=[farm.client_key],
            known_hosts=([pinned], [], []),
            agent_path=None,
        ) as connection:
            result = await connection.run("echo ok", check=True)
            return str(result.stdout).strip() == "ok"

    began = time.monotonic()
    outcomes = await asyncio.gather(*(one(port) for port in farm.ports[:hosts]))
    elapsed = time.monotonic() - began
    if not all(outcomes):
        raise RuntimeError(f"bare asyncssh: {outcomes.count(False)} hosts did not answer ok")
    return elapsed
