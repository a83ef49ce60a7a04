<#
.SYNOPSIS
Remove pantau-agent installed by install.ps1.

.DESCRIPTION
Stops the service (the agent publishes an orderly offline first), unregisters it and deletes
C:\Program Files\pantau. The station's files and the spool in C:\ProgramData\pantau are kept,
so a reinstall picks up where it was, unless -Purge is given.

.PARAMETER Purge
Also delete C:\ProgramData\pantau (config, password, spool, logs).
#>
[CmdletBinding()]
param([switch]$Purge)

Set-StrictMode -Version 3.0
$ErrorActionPreference = "Stop"
$ServiceId = "pantau-agent"
$ProgramDir = Join-Path $env:ProgramFiles "pantau"
$DataDir = Join-Path $env:ProgramData "pantau"

$principal = New-Object Security.Principal.WindowsPrincipal(
    [Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error "uninstall.ps1: run in an Administrator PowerShell" -ErrorAction Continue
    exit 2
}

$winsw = Join-Path $ProgramDir "$ServiceId.exe"
$service = Get-Service -Name $ServiceId -ErrorAction SilentlyContinue
if ($null -ne $service) {
    if ($service.Status -ne "Stopped") {
        Stop-Service -Name $ServiceId
        $service.WaitForStatus("Stopped", (New-TimeSpan -Seconds 30))
    }
    if (Test-Path -LiteralPath $winsw) {
        & $winsw uninstall
    } else {
        & sc.exe delete $ServiceId | Out-Null
    }
}
$link = Join-Path $ProgramDir "venv"
if (Test-Path -LiteralPath $link) {
    $item = Get-Item -LiteralPath $link -Force
    if ($item.LinkType -eq "Junction") { $item.Delete() }
}
if (Test-Path -LiteralPath $ProgramDir) { Remove-Item -Recurse -Force -LiteralPath $ProgramDir }
if ($Purge) {
    if (Test-Path -LiteralPath $DataDir) { Remove-Item -Recurse -Force -LiteralPath $DataDir }
    Write-Host "pantau-agent removed, with its config, password and spool"
} else {
    Write-Host "pantau-agent removed; kept $DataDir (config, password, spool): -Purge deletes it"
}
