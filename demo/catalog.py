"""The fixed vocabulary of the demo facility: departments, what each one treats, and names.

Only data lives here; ``demo.facility`` and ``demo.patients`` draw from it with a seeded RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.patients import AllergySeverity
from models.staff import AdminDuty


@dataclass(frozen=True)
class EquipmentSpec:
    name: str
    equipment_type: str
    manufacturer: str
    model: str
    code: str  # serial-number prefix
    fee: int  # equipment-use charge, minor units


@dataclass(frozen=True)
class ProcedureSpec:
    name: str
    price: int
    equipment_type: str | None = None


@dataclass(frozen=True)
class DiagnosisSpec:
    code: str
    description: str
    goals: tuple[str, str]


@dataclass(frozen=True)
class DrugSpec:
    drug: str
    dose: str
    route: str
    frequency: str
    duration_days: int
    instructions: str | None = None


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str
    description: str
    location: str
    specialties: tuple[str, ...]  # one base doctor per specialty
    wards: tuple[str, ...]
    equipment: tuple[EquipmentSpec, ...]
    procedures: tuple[ProcedureSpec, ...]
    diagnoses: tuple[DiagnosisSpec, ...]
    drugs: tuple[DrugSpec, ...]
    reasons: tuple[str, ...]
    consultation_fee: int
    adult_weight: int  # how often an adult's appointment is here
    child_weight: int
    equipment_rate: float  # share of appointments that book a device


_DEFIBRILLATOR = EquipmentSpec(
    "Defibrillator", "Defibrillator", "ZOLL Medical", "R Series", "DEF", 3500
)

DEPARTMENTS: tuple[DepartmentSpec, ...] = (
    DepartmentSpec(
        code="CARD",
        name="Cardiology",
        description="Diagnosis and treatment of heart and circulatory disease.",
        location="Building A, Floor 2",
        specialties=(
            "General Cardiology",
            "Interventional Cardiology",
            "Electrophysiology",
            "Heart Failure",
        ),
        wards=("Cardiac Care Unit", "Ward A2"),
        equipment=(
            EquipmentSpec(
                "ECG machine", "Electrocardiograph", "Philips", "PageWriter TC70", "ECG", 2500
            ),
            EquipmentSpec(
                "Echocardiography system", "Ultrasound", "GE HealthCare", "Vivid E95", "ECH", 9000
            ),
            EquipmentSpec("Holter monitor", "Holter monitor", "Schiller", "MT-101", "HOL", 4000),
            EquipmentSpec(
                "Cardiac stress test system",
                "Stress test system",
                "GE HealthCare",
                "CASE",
                "STR",
                6000,
            ),
            _DEFIBRILLATOR,
        ),
        procedures=(
            ProcedureSpec("12-lead ECG", 4500, "Electrocardiograph"),
            ProcedureSpec("Transthoracic echocardiogram", 22000, "Ultrasound"),
            ProcedureSpec("24-hour Holter monitoring", 15000, "Holter monitor"),
            ProcedureSpec("Exercise stress test", 18000, "Stress test system"),
            ProcedureSpec("Medication review", 6000),
        ),
        diagnoses=(
            DiagnosisSpec(
                "I10",
                "Essential hypertension",
                ("Blood pressure below 140/90", "Reduce salt intake"),
            ),
            DiagnosisSpec(
                "I48.91",
                "Atrial fibrillation",
                ("Rate control under 110 bpm", "Stroke prevention"),
            ),
            DiagnosisSpec(
                "I25.10",
                "Coronary artery disease",
                ("Angina-free daily activity", "LDL below 70 mg/dL"),
            ),
            DiagnosisSpec(
                "I50.9", "Heart failure", ("Stable weight without oedema", "Walk 30 minutes daily")
            ),
        ),
        drugs=(
            DrugSpec("Metoprolol", "50 mg", "oral", "twice daily", 90),
            DrugSpec("Atorvastatin", "20 mg", "oral", "once daily", 180, "Take in the evening."),
            DrugSpec("Apixaban", "5 mg", "oral", "twice daily", 90),
            DrugSpec("Ramipril", "5 mg", "oral", "once daily", 90),
        ),
        reasons=("Chest pain follow-up", "Palpitations", "Hypertension review", "Post-stent check"),
        consultation_fee=12000,
        adult_weight=18,
        child_weight=0,
        equipment_rate=0.35,
    ),
    DepartmentSpec(
        code="ER",
        name="Emergency",
        description="Round-the-clock emergency care and trauma.",
        location="Building B, Ground Floor",
        specialties=("Emergency Medicine", "Trauma Surgery", "Critical Care"),
        wards=("Triage", "Resuscitation Bay", "Observation Unit"),
        equipment=(
            _DEFIBRILLATOR,
            EquipmentSpec(
                "Patient monitor", "Patient monitor", "Philips", "IntelliVue MX450", "MON", 2000
            ),
            EquipmentSpec(
                "Portable ultrasound", "Ultrasound", "Butterfly Network", "iQ3", "PUS", 5000
            ),
            EquipmentSpec("Ventilator", "Ventilator", "Hamilton Medical", "C6", "VEN", 12000),
            EquipmentSpec(
                "Infusion pump", "Infusion pump", "B. Braun", "Infusomat Space", "INF", 1500
            ),
        ),
        procedures=(
            ProcedureSpec("Wound suturing", 9000),
            ProcedureSpec("Fracture splinting", 12000),
            ProcedureSpec("IV fluid therapy", 6000, "Infusion pump"),
            ProcedureSpec("Focused ultrasound (FAST)", 14000, "Ultrasound"),
            ProcedureSpec("Observation and monitoring", 15000, "Patient monitor"),
        ),
        diagnoses=(
            DiagnosisSpec(
                "S52.5", "Fracture of distal radius", ("Bone union in 6 weeks", "Full wrist motion")
            ),
            DiagnosisSpec(
                "S06.0", "Concussion", ("Symptom-free at rest", "Gradual return to work")
            ),
            DiagnosisSpec(
                "R07.9", "Chest pain, unspecified", ("Rule out cardiac cause", "Pain-free")
            ),
            DiagnosisSpec(
                "T78.4", "Allergic reaction", ("Identify the trigger", "Carry an adrenaline pen")
            ),
        ),
        drugs=(
            DrugSpec("Ibuprofen", "400 mg", "oral", "every 8 hours", 5, "Take with food."),
            DrugSpec("Paracetamol", "1 g", "oral", "every 6 hours", 5),
            DrugSpec("Ondansetron", "4 mg", "intravenous", "every 8 hours", 1),
            DrugSpec("Cetirizine", "10 mg", "oral", "once daily", 7),
        ),
        reasons=("Follow-up after emergency visit", "Wound check", "Suture removal", "Head injury"),
        consultation_fee=15000,
        adult_weight=14,
        child_weight=20,
        equipment_rate=0.2,
    ),
    DepartmentSpec(
        code="RAD",
        name="Radiology",
        description="Medical imaging and image-guided procedures.",
        location="Building C, Basement",
        specialties=("Diagnostic Radiology", "Interventional Radiology", "Neuroradiology"),
        wards=("Imaging Suite",),
        equipment=(
            EquipmentSpec(
                "MRI scanner", "MRI scanner", "Siemens Healthineers", "Magnetom Vida", "MRI", 30000
            ),
            EquipmentSpec(
                "CT scanner", "CT scanner", "GE HealthCare", "Revolution CT", "CT", 18000
            ),
            EquipmentSpec(
                "Digital X-ray system", "X-ray system", "Philips", "DigitalDiagnost C90", "XR", 3000
            ),
            EquipmentSpec(
                "Ultrasound system", "Ultrasound", "Canon Medical", "Aplio i800", "US", 5000
            ),
            EquipmentSpec(
                "Mammography system", "Mammography", "Hologic", "3Dimensions", "MAM", 7000
            ),
        ),
        procedures=(
            ProcedureSpec("MRI scan", 45000, "MRI scanner"),
            ProcedureSpec("CT scan", 30000, "CT scanner"),
            ProcedureSpec("Chest X-ray", 6000, "X-ray system"),
            ProcedureSpec("Abdominal ultrasound", 12000, "Ultrasound"),
        ),
        diagnoses=(
            DiagnosisSpec(
                "M54.5", "Low back pain", ("Exclude structural cause", "Return to daily activity")
            ),
            DiagnosisSpec("R10.4", "Abdominal pain", ("Find the cause", "Pain-free eating")),
            DiagnosisSpec(
                "R91.8", "Abnormal lung imaging", ("Follow-up imaging", "Exclude malignancy")
            ),
        ),
        drugs=(
            DrugSpec(
                "Lorazepam", "1 mg", "sublingual", "once before the scan", 1, "For scan anxiety."
            ),
        ),
        reasons=("MRI scan", "CT scan", "X-ray", "Ultrasound examination", "Mammography"),
        consultation_fee=8000,
        adult_weight=14,
        child_weight=10,
        equipment_rate=0.8,
    ),
    DepartmentSpec(
        code="PED",
        name="Pediatrics",
        description="Care of infants, children and adolescents.",
        location="Building D, Floor 1",
        specialties=(
            "General Pediatrics",
            "Pediatric Cardiology",
            "Neonatology",
            "Pediatric Pulmonology",
        ),
        wards=("Children's Ward", "Neonatal Unit"),
        equipment=(
            EquipmentSpec("Infant incubator", "Incubator", "Dräger", "Babyleo TN500", "INC", 8000),
            EquipmentSpec("Pulse oximeter", "Pulse oximeter", "Masimo", "Radical-7", "OXI", 1000),
            EquipmentSpec("Nebuliser", "Nebuliser", "PARI", "Boy SX", "NEB", 1200),
            EquipmentSpec(
                "Phototherapy unit", "Phototherapy unit", "Natus", "neoBLUE", "PHO", 4000
            ),
        ),
        procedures=(
            ProcedureSpec("Nebuliser treatment", 5000, "Nebuliser"),
            ProcedureSpec("Vaccination", 3500),
            ProcedureSpec("Developmental assessment", 9000),
            ProcedureSpec("Oxygen saturation check", 2500, "Pulse oximeter"),
        ),
        diagnoses=(
            DiagnosisSpec(
                "J45.9", "Asthma", ("No night-time symptoms", "Correct inhaler technique")
            ),
            DiagnosisSpec("H66.9", "Otitis media", ("Resolve infection", "Normal hearing test")),
            DiagnosisSpec(
                "L20.9", "Atopic dermatitis", ("Fewer flare-ups", "Daily skin care routine")
            ),
        ),
        drugs=(
            DrugSpec("Amoxicillin", "250 mg", "oral", "every 8 hours", 7),
            DrugSpec("Salbutamol", "100 mcg", "inhaled", "as needed", 30, "Up to 4 puffs a day."),
            DrugSpec("Paracetamol", "250 mg", "oral", "every 6 hours", 3),
            DrugSpec("Hydrocortisone cream 1%", "thin layer", "topical", "twice daily", 14),
        ),
        reasons=("Well-child visit", "Fever", "Cough", "Vaccination", "Ear pain"),
        consultation_fee=9000,
        adult_weight=0,
        child_weight=60,
        equipment_rate=0.2,
    ),
    DepartmentSpec(
        code="ORTH",
        name="Orthopedics",
        description="Bones, joints, ligaments and the spine.",
        location="Building A, Floor 3",
        specialties=("Joint Replacement", "Sports Medicine", "Spine Surgery", "Hand Surgery"),
        wards=("Ward A3", "Day Surgery"),
        equipment=(
            EquipmentSpec(
                "C-arm fluoroscope",
                "Fluoroscope",
                "Siemens Healthineers",
                "Cios Alpha",
                "CAR",
                9000,
            ),
            EquipmentSpec(
                "Arthroscopy tower", "Arthroscopy system", "Arthrex", "Synergy", "ART", 15000
            ),
            EquipmentSpec("Bone densitometer", "Densitometer", "Hologic", "Horizon A", "DXA", 4500),
            EquipmentSpec("CPM machine", "CPM machine", "Kinetec", "Spectra", "CPM", 2000),
        ),
        procedures=(
            ProcedureSpec("Physiotherapy session", 7000, "CPM machine"),
            ProcedureSpec("Joint injection", 11000, "Fluoroscope"),
            ProcedureSpec("Cast application", 8000),
            ProcedureSpec("Arthroscopic knee surgery", 240000, "Arthroscopy system"),
            ProcedureSpec("Bone density scan", 9000, "Densitometer"),
        ),
        diagnoses=(
            DiagnosisSpec(
                "M17.1", "Osteoarthritis of the knee", ("Walk 1 km without pain", "Lose 5 kg")
            ),
            DiagnosisSpec("S83.5", "Cruciate ligament sprain", ("Stable knee", "Return to sport")),
            DiagnosisSpec(
                "M51.2", "Lumbar disc displacement", ("Pain below 3/10", "Core strength")
            ),
            DiagnosisSpec(
                "M75.1", "Rotator cuff syndrome", ("Full shoulder range", "Sleep without pain")
            ),
        ),
        drugs=(
            DrugSpec("Naproxen", "500 mg", "oral", "twice daily", 14, "Take with food."),
            DrugSpec("Diclofenac gel 1%", "4 g", "topical", "three times daily", 21),
            DrugSpec("Enoxaparin", "40 mg", "subcutaneous", "once daily", 14),
        ),
        reasons=("Knee pain", "Back pain", "Shoulder pain", "Fracture follow-up", "Post-op check"),
        consultation_fee=11000,
        adult_weight=18,
        child_weight=10,
        equipment_rate=0.15,
    ),
    DepartmentSpec(
        code="GEN",
        name="General Medicine",
        description="Adult internal and family medicine; the first stop for most patients.",
        location="Building B, Floor 1",
        specialties=("Internal Medicine", "Family Medicine", "Endocrinology", "Gastroenterology"),
        wards=("Ward B1", "Ward B2"),
        equipment=(
            EquipmentSpec("Spirometer", "Spirometer", "Vitalograph", "Alpha", "SPI", 1500),
            EquipmentSpec(
                "Ambulatory blood pressure monitor",
                "Blood pressure monitor",
                "Welch Allyn",
                "ABPM 7100",
                "BPM",
                2000,
            ),
            EquipmentSpec(
                "Endoscopy tower", "Endoscopy system", "Olympus", "EVIS X1", "END", 14000
            ),
            EquipmentSpec("Glucose analyser", "Glucose analyser", "Abbott", "i-STAT 1", "GLU", 800),
        ),
        procedures=(
            ProcedureSpec("Spirometry", 5500, "Spirometer"),
            ProcedureSpec("Blood panel", 4000),
            ProcedureSpec("Gastroscopy", 35000, "Endoscopy system"),
            ProcedureSpec("Diabetes education session", 6000),
            ProcedureSpec("24-hour blood pressure monitoring", 9000, "Blood pressure monitor"),
        ),
        diagnoses=(
            DiagnosisSpec(
                "E11.9", "Type 2 diabetes mellitus", ("HbA1c below 7%", "Daily glucose log")
            ),
            DiagnosisSpec(
                "J44.9",
                "Chronic obstructive pulmonary disease",
                ("Stop smoking", "Fewer exacerbations"),
            ),
            DiagnosisSpec(
                "K21.9", "Gastro-oesophageal reflux disease", ("Symptom-free meals", "Weight loss")
            ),
            DiagnosisSpec("E03.9", "Hypothyroidism", ("TSH in range", "Normal energy levels")),
        ),
        drugs=(
            DrugSpec("Metformin", "500 mg", "oral", "twice daily", 90, "Take with meals."),
            DrugSpec("Levothyroxine", "50 mcg", "oral", "once daily", 90, "Take before breakfast."),
            DrugSpec("Omeprazole", "20 mg", "oral", "once daily", 28),
            DrugSpec("Amlodipine", "5 mg", "oral", "once daily", 90),
            DrugSpec("Tiotropium", "18 mcg", "inhaled", "once daily", 90),
        ),
        reasons=("Annual check-up", "Blood test results", "Diabetes review", "Cough", "Fatigue"),
        consultation_fee=7500,
        adult_weight=36,
        child_weight=0,
        equipment_rate=0.15,
    ),
)

ADMIN_DUTIES: dict[str, tuple[tuple[AdminDuty, ...], ...]] = {
    "CARD": ((AdminDuty.FRONT_DESK, AdminDuty.SCHEDULING), (AdminDuty.MEDICAL_RECORDS,)),
    "ER": ((AdminDuty.FRONT_DESK,), (AdminDuty.FRONT_DESK, AdminDuty.MEDICAL_RECORDS)),
    "RAD": ((AdminDuty.SCHEDULING,), (AdminDuty.INVENTORY, AdminDuty.MEDICAL_RECORDS)),
    "PED": ((AdminDuty.FRONT_DESK, AdminDuty.SCHEDULING), (AdminDuty.BILLING,)),
    "ORTH": ((AdminDuty.SCHEDULING, AdminDuty.MEDICAL_RECORDS), (AdminDuty.INVENTORY,)),
    "GEN": (
        (AdminDuty.FRONT_DESK, AdminDuty.SCHEDULING),
        (AdminDuty.BILLING, AdminDuty.MEDICAL_RECORDS),
        (AdminDuty.HUMAN_RESOURCES,),
    ),
}

FEMALE_NAMES = (
    "Anna", "Zoë", "Chloé", "Léa", "Renée", "Inês", "Sofia", "Emma", "Mia", "Hannah", "Marta",
    "Agnieszka", "Małgorzata", "Ingrid", "Åsa", "Siobhán", "Elif", "Ayşe", "Fatima", "Leila",
    "Priya", "Mei", "Yuki", "Olga", "Katarzyna", "Lucía", "María", "Joana", "Camille", "Amélie",
    "Greta", "Frida", "Nora", "Ida", "Lena", "Clara", "Julia", "Laura", "Sara", "Elena",
)  # fmt: skip
MALE_NAMES = (
    "Lukas", "Jonas", "Felix", "Noah", "Elias", "Paul", "José", "Andrés", "João", "François",
    "Jérôme", "Björn", "Søren", "Jürgen", "Łukasz", "Piotr", "Tomáš", "Ömer", "Emre", "Mehmet",
    "Ahmed", "Omar", "Karim", "Raj", "Arjun", "Wei", "Hiroshi", "Dmitri", "Ivan", "Matteo",
    "Luca", "Marco", "Liam", "Seán", "Oscar", "Erik", "Mats", "Henrik", "David", "Daniel",
)  # fmt: skip
LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Schäfer", "Wagner", "Becker",
    "Hoffmann", "Koch", "Richter", "Wolf", "Neumann", "Schröder", "Krüger", "Lefèvre", "Dubois",
    "Moreau", "García", "Martínez", "Fernández", "Núñez", "Peña", "Gonçalves", "Silva", "Rossi",
    "Bianchi", "Esposito", "Kowalski", "Nowak", "Wiśniewski", "Novák", "Dvořák", "Horváth",
    "Nagy", "Öztürk", "Y\u0131lmaz", "Demir", "Kaya", "O'Connor", "O'Brien", "Murphy", "Jensen",
    "Nielsen", "Johansson", "Lindqvist", "Andersson", "Petrov", "Nguyen", "Tran", "Kim", "Park",
    "Tanaka", "Suzuki", "Chen", "Wang", "Patel", "Sharma", "Haddad", "Mansour", "van der Berg",
    "de Vries", "Smith", "Brown", "Meyer-Lindqvist", "Zimmermann", "Braun", "Hartmann",
)  # fmt: skip

CITIES: tuple[tuple[str, str, int, int], ...] = (
    # city, phone area code, postal code range
    ("Berlin", "30", 10115, 13599),
    ("Berlin", "30", 10115, 13599),
    ("Berlin", "30", 10115, 13599),
    ("Potsdam", "331", 14467, 14482),
    ("Falkensee", "3322", 14612, 14612),
)
STREETS = (
    "Hauptstraße", "Lindenallee", "Schillerstraße", "Gartenweg", "Bahnhofstraße",
    "Friedrichstraße", "Kastanienallee", "Bergstraße", "Rosenweg", "Am Markt", "Goethestraße",
    "Parkstraße", "Birkenweg", "Mühlenweg", "Torstraße", "Oranienstraße",
)  # fmt: skip
EMAIL_DOMAINS = ("example.org", "example.com", "example.net", "mail.example")
STAFF_EMAIL_DOMAIN = "st-elisabeth.example"
STAFF_PHONE = "+49 30 4500"  # the hospital switchboard; staff get four-digit extensions

ALLERGIES: tuple[tuple[str, str, AllergySeverity], ...] = (
    ("Penicillin", "Hives", AllergySeverity.MODERATE),
    ("Peanuts", "Anaphylaxis", AllergySeverity.LIFE_THREATENING),
    ("Latex", "Contact dermatitis", AllergySeverity.MILD),
    ("Shellfish", "Swelling of the lips", AllergySeverity.SEVERE),
    ("Ibuprofen", "Bronchospasm", AllergySeverity.SEVERE),
    ("Sulfonamides", "Rash", AllergySeverity.MODERATE),
    ("Bee venom", "Anaphylaxis", AllergySeverity.LIFE_THREATENING),
    ("Iodinated contrast", "Urticaria", AllergySeverity.MODERATE),
    ("Egg", "Vomiting", AllergySeverity.MILD),
    ("Grass pollen", "Rhinitis", AllergySeverity.MILD),
    ("Codeine", "Nausea", AllergySeverity.MILD),
)
HISTORY: tuple[tuple[str, bool], ...] = (
    # condition, resolved
    ("Hypertension", False),
    ("Type 2 diabetes", False),
    ("Asthma", False),
    ("Migraine", False),
    ("Hypothyroidism", False),
    ("Depression", False),
    ("Osteoarthritis", False),
    ("Appendectomy", True),
    ("Fractured left wrist", True),
    ("Gastritis", True),
    ("Pneumonia", True),
    ("Chickenpox", True),
    ("Tonsillectomy", True),
)
CHILD_HISTORY: tuple[tuple[str, bool], ...] = (
    ("Asthma", False),
    ("Chickenpox", True),
    ("Otitis media", True),
    ("Bronchiolitis", True),
    ("Eczema", False),
)
RELATIONSHIPS = (
    "Spouse",
    "Partner",
    "Mother",
    "Father",
    "Sister",
    "Brother",
    "Daughter",
    "Son",
    "Friend",
)
INSURERS = ("AOK Nordost", "Techniker Krankenkasse", "Barmer", "DAK-Gesundheit", "Allianz Private")
CANCEL_REASONS = ("Patient request", "Doctor unavailable", "Patient unwell", "Transport problems")
RESCHEDULE_REASONS = (
    "Patient request",
    "Doctor on call",
    "Equipment maintenance",
    "Clash with work",
)
OUTCOMES = ("Tolerated well", "Improving", "No complications", "Partial response", "Stable")
VISIT_NOTES = (
    "Patient reports improvement.",
    "Results discussed with the patient.",
    "Follow-up in four weeks.",
    "Referred for further tests.",
)
NO_SHOW_FEE = 2500
