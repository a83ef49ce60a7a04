<#
.SYNOPSIS
Install or upgrade pantau-agent on a Windows recording PC from the offline bundle.

.DESCRIPTION
Runs from the unpacked bundle (pantau-agent-VERSION-windows-x64), in an Administrator
PowerShell, with no network: pip runs from the bundle's own wheel (tools\) with --no-index and
installs only the hash-pinned wheels in wheels\ into a new environment under
C:\Program Files\pantau. Then it places the station's files in C:\ProgramData\pantau with
restricted ACLs, installs WinSW (pantau-agent.exe, checked against its SHA-256) as the
pantau-agent service and (re)starts it.

An upgrade (no -Station) keeps the installed agent.toml, password, ca.crt and the spool
(C:\ProgramData\pantau\spool.sqlite): events queued while the link was down survive it. The
previous environment is kept for a rollback; older ones are removed.

.PARAMETER Station
The station's folder from `pantau provision` (agent.toml, password, ca.crt). Needed the first
time; on an upgrade the installed files are kept unless it is given.

.PARAMETER Python
python.exe to build the agent's environment with. Default: the newest supported CPython the
py launcher knows (3.13, 3.12, 3.11).

.PARAMETER NoStart
Install and register the service, but do not start it.

.EXAMPLE
.\install.ps1 -Station E:\3310-juwiring-01
.\install.ps1                      # upgrade with this (newer) bundle
#>
[CmdletBinding()]
param(
    [string]$Station = "",
    [string]$Python = "",
    [switch]$NoStart
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = "Stop"

# WinSW: not on any package index, so the bundle names the exact file and its SHA-256.
$WinSwFile = "WinSW-x64.exe"
$WinSwSha256 = "05b82d46ad331cc16bdc00de5c6332c1ef818df8ceefcd49c726553209b3a0da"
$ServiceId = "pantau-agent"
$Here = $PSScriptRoot
$ProgramDir = Join-Path $env:ProgramFiles "pantau"
$DataDir = Join-Path $env:ProgramData "pantau"
# Well-known SIDs, not names: group names are translated on an Indonesian Windows.
$Admins = "*S-1-5-32-544"
$System = "*S-1-5-18"
$LocalService = "*S-1-5-19"

function Fail([string]$Message) {
    Write-Error "install.ps1: $Message" -ErrorAction Continue
    exit 2
}

$principal = New-Object Security.Principal.WindowsPrincipal(
    [Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail "run in an Administrator PowerShell"
}

# 1. a supported Python
$locks = @(Get-ChildItem -Path $Here -Filter "requirements-cp3*.txt" | Sort-Object Name -Descending)
if ($locks.Count -eq 0) { Fail "no requirements-cp3*.txt here: is this the unpacked bundle?" }
if ($Python -eq "" -and $null -ne (Get-Command py -ErrorAction SilentlyContinue)) {
    # Windows PowerShell 5.1 turns a native command's redirected stderr into errors: not here
    $ErrorActionPreference = "Continue"
    foreach ($lock in $locks) {
        $minor = $lock.BaseName -replace "^requirements-cp3", ""
        $found = & py "-3.$minor" -c "import sys; print(sys.executable)" 2>$null
        if ($LASTEXITCODE -eq 0 -and $found) { $Python = "$found".Trim(); break }
    }
    $ErrorActionPreference = "Stop"
}
if ($Python -eq "") {
    $supported = ($locks | ForEach-Object { $_.BaseName -replace "^requirements-cp3", "3." }) -join ", "
    Fail "no supported Python found (this bundle: CPython $supported, 64-bit, installed for all users)"
}
$tag = & $Python -c "import sys, struct; print('cp%d%d-%d' % (sys.version_info[0], sys.version_info[1], struct.calcsize('P') * 8))"
if ($LASTEXITCODE -ne 0) { Fail "$Python does not run" }
$tag = "$tag".Trim()
if (-not $tag.EndsWith("-64")) { Fail "$Python is a 32-bit Python: install the 64-bit one" }
$tag = $tag.Substring(0, $tag.Length - 3)
$lock = Join-Path $Here "requirements-$tag.txt"
if (-not (Test-Path -LiteralPath $lock)) { Fail "$Python is $tag; this bundle has no wheels for it" }
$pipWheel = @(Get-ChildItem -Path (Join-Path $Here "tools") -Filter "pip-*.whl")
if ($pipWheel.Count -ne 1) { Fail "tools\pip-*.whl missing: is this a complete bundle?" }
$version = (Select-String -LiteralPath $lock -Pattern "^pantau\[agent\]==(\S+)").Matches[0].Groups[1].Value

# 2. WinSW, checked before anything changes
$winsw = Join-Path $Here $WinSwFile
$installedWinSw = Join-Path $ProgramDir "$ServiceId.exe"
if (Test-Path -LiteralPath $winsw) {
    $hash = (Get-FileHash -Algorithm SHA256 -LiteralPath $winsw).Hash.ToLowerInvariant()
    if ($hash -ne $WinSwSha256) { Fail "$WinSwFile has SHA-256 $hash, expected $WinSwSha256 (WinSW v2.12.0 x64)" }
} elseif (-not (Test-Path -LiteralPath $installedWinSw)) {
    Fail "put WinSW v2.12.0 ($WinSwFile, SHA-256 $WinSwSha256) next to install.ps1"
}

# 3. the station's files
if ($Station -ne "") {
    foreach ($f in @("agent.toml", "password")) {
        if (-not (Test-Path -LiteralPath (Join-Path $Station $f))) {
            Fail "$Station\$f missing: give the station's folder from pantau provision"
        }
    }
} elseif (-not (Test-Path -LiteralPath (Join-Path $DataDir "agent.toml"))) {
    Fail "first install: give -Station (the station's folder from pantau provision)"
}

# 4. the agent's environment, next to the running one
New-Item -ItemType Directory -Force -Path $ProgramDir | Out-Null
$new = Join-Path $ProgramDir ("venv-$version-" + (Get-Date -Format "yyyyMMddHHmmss"))
Write-Host "installing pantau-agent $version ($tag) into $new"
& $Python -m venv --without-pip $new
if ($LASTEXITCODE -ne 0) { Fail "python -m venv failed" }
$venvPython = Join-Path $new "Scripts\python.exe"
$env:PIP_CONFIG_FILE = "nul"   # this PC's pip configuration must not add an index
& $venvPython (Join-Path $pipWheel[0].FullName "pip") install --isolated --no-index `
    --find-links (Join-Path $Here "wheels") "--only-binary=:all:" --require-hashes `
    --no-cache-dir --disable-pip-version-check --no-warn-script-location --quiet -r $lock
if ($LASTEXITCODE -ne 0) {
    Remove-Item -Recurse -Force -LiteralPath $new
    Fail "pip could not install from the bundle (nothing was changed)"
}
$agentExe = Join-Path $new "Scripts\pantau-agent.exe"
& $agentExe --version | Out-Null
if ($LASTEXITCODE -ne 0) { Remove-Item -Recurse -Force -LiteralPath $new; Fail "the new environment does not run" }

# 5. stop the running service (it publishes an orderly offline first)
$service = Get-Service -Name $ServiceId -ErrorAction SilentlyContinue
if ($null -ne $service -and $service.Status -ne "Stopped") {
    Stop-Service -Name $ServiceId
    $service.WaitForStatus("Stopped", (New-TimeSpan -Seconds 30))
}

# 6. the data folder: Administrators and SYSTEM full, the service account may write its spool
# and logs; the password readable by the service account only (besides the administrators)
New-Item -ItemType Directory -Force -Path $DataDir, (Join-Path $DataDir "logs") | Out-Null
& icacls $DataDir /inheritance:r /grant:r "${Admins}:(OI)(CI)F" "${System}:(OI)(CI)F" "${LocalService}:(OI)(CI)M" | Out-Null
if ($LASTEXITCODE -ne 0) { Fail "icacls on $DataDir failed" }
if ($Station -ne "") {
    foreach ($f in @("agent.toml", "ca.crt", "password")) {
        $src = Join-Path $Station $f
        if (Test-Path -LiteralPath $src) {
            Copy-Item -LiteralPath $src -Destination (Join-Path $DataDir $f) -Force
        }
    }
    Write-Host "placed $DataDir\agent.toml, password, ca.crt"
}
$password = Join-Path $DataDir "password"
& icacls $password /inheritance:r /grant:r "${Admins}:F" "${System}:F" "${LocalService}:R" | Out-Null
if ($LASTEXITCODE -ne 0) { Fail "icacls on $password failed" }

$config = Join-Path $DataDir "agent.toml"
& $agentExe check --config $config
if ($LASTEXITCODE -ge 2) { Remove-Item -Recurse -Force -LiteralPath $new; Fail "$config is not usable (above)" }
if ($LASTEXITCODE -eq 1) { Write-Warning "'check' found a problem above (a peripheral or the login); the service reports it" }

# 7. switch: the service runs $ProgramDir\venv, a junction to the new environment
$link = Join-Path $ProgramDir "venv"
$previous = $null
if (Test-Path -LiteralPath $link) {
    $item = Get-Item -LiteralPath $link -Force
    if ($item.LinkType -eq "Junction") {
        $previous = [string]$item.Target
        $item.Delete()
    } else {
        Rename-Item -LiteralPath $link -NewName ("old-venv-" + (Get-Date -Format "yyyyMMddHHmmss"))
    }
}
New-Item -ItemType Junction -Path $link -Target $new | Out-Null

# 8. the service
Copy-Item -LiteralPath (Join-Path $Here "pantau-agent.xml") -Destination (Join-Path $ProgramDir "$ServiceId.xml") -Force
if (Test-Path -LiteralPath $winsw) { Copy-Item -LiteralPath $winsw -Destination $installedWinSw -Force }
if ($null -ne $service) {
    & $installedWinSw uninstall   # registered again below: the definition may have changed
}
& $installedWinSw install
if ($LASTEXITCODE -ne 0) { Fail "registering the service failed" }
if (-not $NoStart) {
    Start-Service -Name $ServiceId
    Write-Host "pantau-agent $version running; logs in $DataDir\logs"
}

# 9. keep the previous environment for a rollback, remove older ones
Get-ChildItem -LiteralPath $ProgramDir -Directory -Filter "venv-*" | Where-Object {
    $_.FullName -ne $new -and $_.FullName -ne $previous
} | Remove-Item -Recurse -Force
Write-Host "pantau-agent $version installed ($link -> $new)"
