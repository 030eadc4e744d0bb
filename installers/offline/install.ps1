# Install palette-wizard from this wheelhouse with no network access (target @TARGET@, Python @PYTHON_VERSION@).
# Usage: powershell -ExecutionPolicy Bypass -File install.ps1 [-Venv DIR] [-Python PATH]
param(
    [string]$Venv = (Join-Path $env:LOCALAPPDATA "palette-wizard\venv"),
    [string]$Python = ""
)
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path

if (-not $Python) {
    if (Get-Command py -ErrorAction SilentlyContinue) { $Python = "py"; $pyArgs = @("-@PYTHON_VERSION@") }
    else { $Python = "python"; $pyArgs = @() }
} else { $pyArgs = @() }
$have = & $Python @pyArgs -c "import sys; print('%d.%d' % sys.version_info[:2])"
if ($have -ne "@PYTHON_VERSION@") {
    throw "this wheelhouse is for Python @PYTHON_VERSION@, but $Python is $have; pass -Python C:\path\to\python.exe"
}

Write-Host "checking the wheels against SHA256SUMS"
foreach ($line in Get-Content (Join-Path $here "SHA256SUMS")) {
    $expected, $name = $line -split "\s+", 2
    $actual = (Get-FileHash -Algorithm SHA256 (Join-Path $here $name)).Hash.ToLower()
    if ($actual -ne $expected) { throw "checksum mismatch: $name" }
}

& $Python @pyArgs -m venv $Venv
if ($LASTEXITCODE -ne 0) { throw "creating the virtualenv failed" }
$venvPython = Join-Path $Venv "Scripts\python.exe"
& $venvPython -m pip install --no-index --find-links $here --only-binary=:all: --disable-pip-version-check "@REQUIREMENT@"
if ($LASTEXITCODE -ne 0) { throw "pip install failed" }
& (Join-Path $Venv "Scripts\palette-wizard.exe") --version
Write-Host "installed: $(Join-Path $Venv 'Scripts\palette-wizard.exe')"
