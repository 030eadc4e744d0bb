# Build the Windows desktop app into dist\palette-wizard\ and smoke-test it; run from any folder:
#   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1 [-Python py] [-NoSmoke] [-Zip]
# Signing: set SIGNTOOL_CERT_SHA1 (a code-signing certificate's thumbprint in the certificate store) and,
# optionally, SIGNTOOL_TIMESTAMP_URL; both executables are then signed with signtool (Windows SDK).
param(
    [string]$Python = "py",
    [switch]$NoSmoke,
    [switch]$Zip
)
$ErrorActionPreference = "Stop"
$root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
Set-Location $root
$venv = Join-Path $root "build\venv-windows"
if (-not (Test-Path (Join-Path $venv "Scripts\python.exe"))) {
    if ($Python -eq "py") { & py -3.11 -m venv $venv } else { & $Python -m venv $venv }
    if ($LASTEXITCODE -ne 0) { throw "creating $venv failed (Python 3.11 or newer is needed)" }
}
$py = Join-Path $venv "Scripts\python.exe"
& $py -m pip install -q --upgrade pip
& $py -m pip install -q -e $root -r (Join-Path $root "installers\requirements-build.txt")
if ($LASTEXITCODE -ne 0) { throw "installing the build requirements failed" }
$version = & $py -c "import sys; sys.path.insert(0, 'installers'); import common; print(common.version())"

$started = Get-Date
& $py -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build\pyinstaller-windows `
    installers\windows\palette-wizard.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
$took = [int]((Get-Date) - $started).TotalSeconds
$app = Join-Path $root "dist\palette-wizard"
Write-Host "built $app in ${took}s"

if ($env:SIGNTOOL_CERT_SHA1) {
    $ts = if ($env:SIGNTOOL_TIMESTAMP_URL) { $env:SIGNTOOL_TIMESTAMP_URL } else { "http://timestamp.digicert.com" }
    foreach ($exe in @("palette-wizard.exe", "Palette Appliance Wizard.exe")) {
        & signtool sign /sha1 $env:SIGNTOOL_CERT_SHA1 /fd SHA256 /tr $ts /td SHA256 (Join-Path $app $exe)
        if ($LASTEXITCODE -ne 0) { throw "signing $exe failed" }
    }
}

if (-not $NoSmoke) {
    $scratch = Join-Path ([System.IO.Path]::GetTempPath()) ("pw-smoke-" + [guid]::NewGuid())
    New-Item -ItemType Directory $scratch | Out-Null
    $env:PALETTE_WIZARD_HOME = Join-Path $scratch "home"
    $env:QT_QPA_PLATFORM = "offscreen"
    Push-Location $scratch
    try {
        $got = & (Join-Path $app "palette-wizard.exe") --version
        if ($got -ne "palette-wizard $version") { throw "expected 'palette-wizard $version', got '$got'" }
        Write-Host $got
        $env:PALETTE_WIZARD_SMOKE_TEST = "5"
        & (Join-Path $app "palette-wizard.exe")
        if ($LASTEXITCODE -ne 0) { throw "the desktop wizard did not start (exit $LASTEXITCODE)" }
        & (Join-Path $app "palette-wizard.exe") --rehearse
        if ($LASTEXITCODE -ne 0) { throw "the rehearsal did not start (exit $LASTEXITCODE)" }
        Remove-Item Env:PALETTE_WIZARD_SMOKE_TEST
        & (Join-Path $app "palette-wizard.exe") run --rehearse --speed 600 --until cluster
        if ($LASTEXITCODE -ne 0) { throw "the headless rehearsal failed (exit $LASTEXITCODE)" }
    } finally {
        Pop-Location
        Remove-Item Env:QT_QPA_PLATFORM, Env:PALETTE_WIZARD_HOME -ErrorAction SilentlyContinue
        Remove-Item -Recurse -Force $scratch -ErrorAction SilentlyContinue
    }
}

if ($Zip) {
    $archive = Join-Path $root "dist\palette-wizard-$version-windows-x86_64.zip"
    Compress-Archive -Path $app -DestinationPath $archive -Force
    Write-Host "archive: $archive"
}
